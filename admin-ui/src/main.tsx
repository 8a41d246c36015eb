import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import './styles.css';
import { api, auth, loadCollections, refresh } from './api';
import { go, href, useHash } from './router';
import { ConfirmHost, Spinner, ThemeToggle, ToastHost } from './ui';
import { Install, Login } from './pages/Login';
import { Records } from './pages/Records';
import { RecordForm } from './pages/RecordForm';
import { CollectionEditor } from './pages/CollectionEditor';
import { Settings } from './pages/Settings';
import { ExportCollections, ImportCollections } from './pages/CollectionsSync';
import { ApiPreview } from './pages/ApiPreview';
import { ApiDocs } from './pages/ApiDocs';
import { Logs } from './pages/Logs';
import { Backups } from './pages/Backups';
import { StorageSettings } from './pages/S3Settings';
import { Crons } from './pages/Crons';
import { SqlConsole } from './pages/SqlConsole';
import { ACCOUNT_PAGES, AccountPage } from './pages/Account';

// Top-level screens without the collections sidebar.
const SCREENS: [string, string][] = [['logs', 'Logs'], ['backups', 'Backups'], ['crons', 'Crons'], ['sql', 'SQL'], ['api', 'API'], ['settings', 'Settings']];
const isScreen = (r: string) => SCREENS.some(([k]) => k === r);

function App() {
  const route = useHash();
  const [session, setSession] = useState(auth.session);
  const [ready, setReady] = useState(!auth.session);
  const [collections, setCollections] = useState<any[]>([]);

  useEffect(() => auth.subscribe(setSession) as any, []);
  // A stored session is checked (and its token renewed) once per page load.
  useEffect(() => {
    if (!auth.session) return;
    refresh()
      .catch(() => auth.clear())
      .finally(() => setReady(true));
  }, []);
  const reload = async () => setCollections(await loadCollections());
  useEffect(() => {
    if (session) reload().catch(() => {});
  }, [session?.token]);

  if (route[0] === 'pbinstal') return <Install token={route[1] || ''} />;
  // Links from auth mails: public pages for a collection's users, with or without a superuser session.
  if (route[0] === 'auth' && ACCOUNT_PAGES.includes(route[1])) return <AccountPage key={route.slice(1, 3).join('/')} page={route[1]} token={route[2] || ''} />;
  if (!ready) return <div class="center"><Spinner /></div>;
  if (!session) return <Login />;

  return (
    <div class="shell">
      <header class="topbar">
        <a class="brand" href={href('')}>Ferrobase</a>
        <nav aria-label="Main">
          <a href={href('')} class={!isScreen(route[0]) ? 'active' : ''} aria-current={!isScreen(route[0]) ? 'page' : undefined}>Collections</a>
          {SCREENS.map(([k, label]) => (
            <a href={href(k)} class={route[0] === k ? 'active' : ''} aria-current={route[0] === k ? 'page' : undefined}>{label}</a>
          ))}
        </nav>
        <div class="spacer" />
        <ThemeToggle />
        <span class="muted small who" title="Signed in superuser">{session.record?.email}</span>
        <button type="button" class="btn ghost small" onClick={() => { auth.clear(); go('login'); }}>Log out</button>
      </header>
      <div class="body">
        {!isScreen(route[0]) && <Sidebar collections={collections} active={route[0] === 'c' ? route[1] : ''} />}
        <main id="main" tabIndex={-1}>
          <Page route={route} collections={collections} reload={reload} />
        </main>
      </div>
      <ConfirmHost />
      <ToastHost />
    </div>
  );
}

function Page({ route, collections, reload }: { route: string[]; collections: any[]; reload: () => Promise<void> }) {
  const [a, name, b, id] = route;
  if (a === 'settings' && name === 'storage') return <StorageSettings />;
  if (a === 'settings' && name === 'export-collections') return <ExportCollections />;
  if (a === 'settings' && name === 'import-collections') return <ImportCollections reload={reload} />;
  if (a === 'settings') return <Settings />;
  if (a === 'logs') return <Logs id={name} />;
  if (a === 'backups') return <Backups />;
  if (a === 'crons') return <Crons />;
  if (a === 'sql') return <SqlConsole />;
  if (a === 'api') return <ApiDocs />;
  if (a === 'new') return <CollectionEditor key="new" collections={collections} reload={reload} />;
  if (a === 'c' && name) {
    const collection = collections.find((c) => c.name === name || c.id === name);
    if (!collection) return collections.length ? <div class="empty">No collection named “{name}”.</div> : <Spinner />;
    if (b === 'edit') return <CollectionEditor key={collection.id + collection.updated} initial={collection} collections={collections} reload={reload} />;
    if (b === 'api') return <ApiPreview collection={collection} />;
    if (b === 'r' && id) return <RecordForm key={collection.id + id} collection={collection} collections={collections} id={id} />;
    return <Records key={collection.id} collection={collection} collections={collections} />;
  }
  const first = collections.find((c) => !c.system) || collections[0];
  return first ? <Redirect to={'c/' + first.name} /> : <Spinner />;
}

function Redirect({ to }: { to: string }) {
  useEffect(() => go(to), [to]);
  return null;
}

function Sidebar({ collections, active }: { collections: any[]; active: string }) {
  const [q, setQ] = useState('');
  const [showSystem, setShowSystem] = useState(false);
  const filtered = useMemo(() => collections.filter((c) => c.name.toLowerCase().includes(q.toLowerCase())), [collections, q]);
  const user = filtered.filter((c) => !c.system);
  const system = filtered.filter((c) => c.system);
  const item = (c: any) => (
    <li key={c.id}>
      <a href={href('c/' + c.name)} class={active === c.name || active === c.id ? 'active' : ''} aria-current={active === c.name ? 'page' : undefined}>
        <span class={'type-dot ' + c.type} aria-hidden="true" />
        {c.name}
        {c.type === 'auth' && <span class="tag">auth</span>}
      </a>
    </li>
  );
  return (
    <aside class="sidebar" aria-label="Collections">
      <input type="search" placeholder="Search collections" aria-label="Search collections" value={q} onInput={(e) => setQ((e.target as HTMLInputElement).value)} />
      <ul class="nav-list">{user.map(item)}</ul>
      {user.length === 0 && <p class="muted small">No collections{q ? ' match' : ' yet'}.</p>}
      <a class="btn primary block" href={href('new')}>+ New collection</a>
      <button type="button" class="linklike small" aria-expanded={showSystem || !!q} onClick={() => setShowSystem(!showSystem)}>
        {showSystem || q ? '▾' : '▸'} System ({system.length})
      </button>
      {(showSystem || q) && <ul class="nav-list system">{system.map(item)}</ul>}
    </aside>
  );
}

render(<App />, document.getElementById('app')!);

// Keep `api` referenced for devtools poking (`window.fb.api('GET', '/api/health')`).
(window as any).fb = { api };
