// Hash routes (`/_/#/c/posts`), so deep links never reach the server as paths
// and the install link's token never appears in access logs. An editor with
// unsaved changes can register a leave guard, asked before the route changes.
import { useEffect, useState } from 'preact/hooks';

let guard: (() => boolean) | null = null;
let current = location.hash;

/** `check` returns true when leaving is fine; null removes the guard. */
export function setLeaveGuard(check: (() => boolean) | null) {
  guard = check;
  window.onbeforeunload = check ? (e: BeforeUnloadEvent) => { e.preventDefault(); return ''; } : null;
}

export function useHash(): string[] {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => {
      if (guard && !guard()) {
        // Stay: put the previous address back without another hashchange.
        history.replaceState(null, '', current || '#/');
        return;
      }
      setLeaveGuard(null);
      current = location.hash;
      setHash(current);
    };
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash.replace(/^#\/?/, '').split('?')[0].split('/').filter(Boolean).map(decodePart);
}

/** A malformed escape (`%E0`) in a pasted link is kept as typed instead of throwing. */
function decodePart(part: string) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

export function go(path: string) {
  location.hash = '#/' + path.replace(/^\//, '');
}

export function href(path: string) {
  return '#/' + path.replace(/^\//, '');
}

/** Registers a guard while `dirty`; leaving asks to discard the changes. */
export function useLeaveGuard(dirty: boolean, what = 'changes') {
  useEffect(() => {
    if (!dirty) return;
    setLeaveGuard(() => window.confirm(`Discard unsaved ${what}?`));
    return () => setLeaveGuard(null);
  }, [dirty]);
}

/** The records list of a collection as last shown (filter, sort, page), for "back" links. */
export function listPath(name: string) {
  const q = sessionStorage.getItem(`fb_list_${name}`);
  return `c/${name}${q ? `?${q}` : ''}`;
}

export function rememberList(name: string, query: string) {
  sessionStorage.setItem(`fb_list_${name}`, query);
}
