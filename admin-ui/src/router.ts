// Hash routes (`/_/#/c/posts`), so deep links never reach the server as paths
// and the install link's token never appears in access logs.
import { useEffect, useState } from 'preact/hooks';

export function useHash(): string[] {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash.replace(/^#\/?/, '').split('?')[0].split('/').filter(Boolean).map(decodeURIComponent);
}

export function go(path: string) {
  location.hash = '#/' + path.replace(/^\//, '');
}

export function href(path: string) {
  return '#/' + path.replace(/^\//, '');
}
