// Per-collection API reference: each endpoint with a JS SDK snippet and curl.
import { useState } from 'preact/hooks';
import { href } from '../router';
import { toast } from '../ui';

export function ApiPreview({ collection }: { collection: any }) {
  const origin = location.origin;
  const name = collection.name;
  const isAuth = collection.type === 'auth';
  const sample = sampleBody(collection);
  const rule = (k: string) => (collection[k] === null ? 'superusers only' : collection[k] === '' ? 'public' : collection[k]);
  const items: Endpoint[] = [
    { title: 'List / search', method: 'GET', path: `/api/collections/${name}/records?page=1&perPage=30&filter=...&sort=-created`, rule: rule('listRule'),
      sdk: `const page = await pb.collection('${name}').getList(1, 30, {\n  filter: 'created >= "2024-01-01 00:00:00"',\n  sort: '-created',\n});`,
      curl: `curl '${origin}/api/collections/${name}/records?page=1&perPage=30' \\\n  -H "Authorization: $TOKEN"` },
    { title: 'View', method: 'GET', path: `/api/collections/${name}/records/:id`, rule: rule('viewRule'),
      sdk: `const record = await pb.collection('${name}').getOne('RECORD_ID');`,
      curl: `curl '${origin}/api/collections/${name}/records/RECORD_ID' \\\n  -H "Authorization: $TOKEN"` },
    { title: 'Create', method: 'POST', path: `/api/collections/${name}/records`, rule: rule('createRule'),
      sdk: `const record = await pb.collection('${name}').create(${JSON.stringify(sample, null, 2)});`,
      curl: `curl -X POST '${origin}/api/collections/${name}/records' \\\n  -H "Authorization: $TOKEN" -H 'Content-Type: application/json' \\\n  -d '${JSON.stringify(sample)}'` },
    { title: 'Update', method: 'PATCH', path: `/api/collections/${name}/records/:id`, rule: rule('updateRule'),
      sdk: `const record = await pb.collection('${name}').update('RECORD_ID', ${JSON.stringify(sample, null, 2)});`,
      curl: `curl -X PATCH '${origin}/api/collections/${name}/records/RECORD_ID' \\\n  -H "Authorization: $TOKEN" -H 'Content-Type: application/json' \\\n  -d '${JSON.stringify(sample)}'` },
    { title: 'Delete', method: 'DELETE', path: `/api/collections/${name}/records/:id`, rule: rule('deleteRule'),
      sdk: `await pb.collection('${name}').delete('RECORD_ID');`,
      curl: `curl -X DELETE '${origin}/api/collections/${name}/records/RECORD_ID' \\\n  -H "Authorization: $TOKEN"` },
  ];
  if (isAuth) {
    items.push(
      { title: 'Auth with password', method: 'POST', path: `/api/collections/${name}/auth-with-password`, rule: 'public',
        sdk: `const auth = await pb.collection('${name}').authWithPassword('test@example.com', 'secret123');\nconsole.log(pb.authStore.token);`,
        curl: `curl -X POST '${origin}/api/collections/${name}/auth-with-password' \\\n  -H 'Content-Type: application/json' \\\n  -d '{"identity":"test@example.com","password":"secret123"}'` },
      { title: 'Auth refresh', method: 'POST', path: `/api/collections/${name}/auth-refresh`, rule: 'the record itself',
        sdk: `await pb.collection('${name}').authRefresh();`,
        curl: `curl -X POST '${origin}/api/collections/${name}/auth-refresh' -H "Authorization: $TOKEN"` },
      { title: 'Request verification', method: 'POST', path: `/api/collections/${name}/request-verification`, rule: 'public',
        sdk: `await pb.collection('${name}').requestVerification('test@example.com');`,
        curl: `curl -X POST '${origin}/api/collections/${name}/request-verification' \\\n  -H 'Content-Type: application/json' -d '{"email":"test@example.com"}'` },
    );
  }
  return (
    <section class="page api-preview" aria-labelledby="api-title">
      <div class="page-head">
        <h1 id="api-title">API preview: <span class="accent">{name}</span></h1>
        <div class="spacer" />
        <a class="btn ghost" href={href(`c/${name}`)}>← Records</a>
      </div>
      <p class="muted">
        Setup: <code>npm install pocketbase</code>, then <code>{`const pb = new PocketBase('${origin}');`}</code>. Ferrobase speaks PocketBase's REST API, so the official SDKs work unchanged.
      </p>
      {items.map((e) => <EndpointCard e={e} />)}
    </section>
  );
}

type Endpoint = { title: string; method: string; path: string; rule: string; sdk: string; curl: string };

function EndpointCard({ e }: { e: Endpoint }) {
  const [tab, setTab] = useState<'sdk' | 'curl'>('sdk');
  const code = tab === 'sdk' ? e.sdk : e.curl;
  return (
    <article class="card endpoint">
      <header>
        <span class={'method m-' + e.method}>{e.method}</span>
        <code>{e.path}</code>
        <div class="spacer" />
        <span class="small muted">Rule: <code>{e.rule}</code></span>
      </header>
      <h2>{e.title}</h2>
      <div class="segmented small" role="tablist">
        <button type="button" role="tab" aria-selected={tab === 'sdk'} class={tab === 'sdk' ? 'on' : ''} onClick={() => setTab('sdk')}>JS SDK</button>
        <button type="button" role="tab" aria-selected={tab === 'curl'} class={tab === 'curl' ? 'on' : ''} onClick={() => setTab('curl')}>curl</button>
        <button type="button" class="copy" onClick={() => navigator.clipboard?.writeText(code).then(() => toast('Copied.'))}>Copy</button>
      </div>
      <pre><code>{code}</code></pre>
    </article>
  );
}

function sampleBody(collection: any) {
  const out: any = {};
  for (const f of collection.fields) {
    if (f.system || f.type === 'autodate' || f.type === 'file' || f.hidden) continue;
    const multi = (f.maxSelect || 1) > 1;
    out[f.name] =
      f.type === 'number' ? 123 : f.type === 'bool' ? true : f.type === 'email' ? 'test@example.com' : f.type === 'url' ? 'https://example.com' :
      f.type === 'date' ? '2024-01-01 10:00:00.123Z' : f.type === 'select' ? (multi ? f.values.slice(0, 2) : f.values[0] || '') :
      f.type === 'relation' ? (multi ? ['RELATION_ID'] : 'RELATION_ID') : f.type === 'json' ? { key: 'value' } :
      f.type === 'geoPoint' ? { lon: 0, lat: 0 } : f.type === 'password' ? 'secret123' : 'test';
  }
  if (collection.type === 'auth') Object.assign(out, { email: 'test@example.com', password: 'secret123', passwordConfirm: 'secret123' });
  return out;
}
