// OAuth2: the on/off switch, the configured providers (logo, name, their
// form, remove), a searchable picker of every provider the server knows,
// and the optional mapping of OAuth2 user data onto record fields.
import { useEffect, useRef, useState } from 'preact/hooks';
import { Check, Row, confirmDanger } from '../../ui';
import { EnabledBadge, Logo, ProviderInfo, Section, SectionProps, errAt, hasErrorAt, opt, setOpt, useProviderCatalog } from './common';
import { ProviderForm } from './ProviderForm';

const MAPPED: [string, string][] = [
  ['name', 'OAuth2 full name'],
  ['avatarURL', 'OAuth2 avatar'],
  ['id', 'OAuth2 id'],
  ['username', 'OAuth2 username'],
];

export function OAuth2Section(props: SectionProps) {
  const { draft, err, initial } = props;
  const o = opt(draft, 'oauth2');
  const providers: any[] = Array.isArray(o.providers) ? o.providers : [];
  const catalog = useProviderCatalog();
  const [openName, setOpenName] = useState<string | null>(null);
  const [picking, setPicking] = useState(false);
  const info = (name: string) => catalog?.find((c) => c.name === name);
  const stored = new Set<string>((initial?.oauth2?.providers || []).map((x: any) => x.name));
  const setProviders = (list: any[]) => setOpt(props, 'oauth2', { providers: list });
  const update = (i: number, patch: any) => setProviders(providers.map((x, j) => (j === i ? { ...x, ...patch } : x)));
  const add = (name: string) => {
    setPicking(false);
    setProviders([...providers, { name, clientId: '', clientSecret: '', displayName: '', pkce: null, extra: {} }]);
    setOpenName(name);
    setTimeout(() => (document.querySelector(`[data-provider="${name}"] input[name="clientId"]`) as HTMLInputElement | null)?.focus(), 0);
  };
  const remove = async (i: number) => {
    const name = providers[i].name;
    if (stored.has(name) && !(await confirmDanger(`Remove the ${info(name)?.displayName || name} provider? Its settings are dropped when you save.`, 'Remove provider'))) return;
    setProviders(providers.filter((_, j) => j !== i));
  };
  const fieldNames = (draft.fields || []).filter((f: any) => !f.system && f.type !== 'password' && f.name).map((f: any) => f.name);

  return (
    <Section id="oauth2" title="OAuth2" badge={<EnabledBadge on={!!o.enabled} />} error={hasErrorAt(err, 'oauth2')}>
      <Check label="Enable OAuth2 sign-in" name="oauth2.enabled" checked={!!o.enabled} onChange={(v) => setOpt(props, 'oauth2', { enabled: v })} />
      {errAt(err, 'oauth2.providers') && <div class="field-error" role="alert">{errAt(err, 'oauth2.providers')}</div>}
      <ul class="provider-list" aria-label="Configured OAuth2 providers">
        {providers.map((p, i) => {
          const open = openName === p.name || hasErrorAt(err, `oauth2.providers.${i}`);
          return (
            <li class={'provider-item' + (hasErrorAt(err, `oauth2.providers.${i}`) ? ' has-error' : '')} data-provider={p.name} key={p.name + i}>
              <div class="provider-head">
                <Logo svg={info(p.name)?.logo} />
                <strong>{p.displayName || info(p.name)?.displayName || p.name}</strong>
                <code class="muted small">{p.name}</code>
                {!stored.has(p.name) && <span class="tag">new</span>}
                <span class="spacer" />
                <button type="button" class="btn small ghost" aria-expanded={open} onClick={() => setOpenName(open ? null : p.name)}>{open ? 'Close' : 'Edit'}</button>
                <button type="button" class="icon-btn danger" aria-label={`Remove provider ${p.name}`} title="Remove provider" onClick={() => remove(i)}>✕</button>
              </div>
              {errAt(err, `oauth2.providers.${i}.name`) && <div class="field-error" role="alert">{errAt(err, `oauth2.providers.${i}.name`)}</div>}
              {open && <ProviderForm p={p} index={i} info={info(p.name)} hasStoredSecret={stored.has(p.name)} err={err} onChange={(patch) => update(i, patch)} />}
            </li>
          );
        })}
        {providers.length === 0 && <li class="muted">No providers yet.</li>}
      </ul>
      <div class="actions-left">
        <button type="button" class="btn" onClick={() => setPicking(true)}>+ Add provider</button>
      </div>
      {picking && <ProviderPicker catalog={catalog} taken={new Set(providers.map((p) => p.name))} onPick={add} onClose={() => setPicking(false)} />}

      <fieldset class="provider-extra">
        <legend>Optional mapped fields</legend>
        <p class="hint">Copied from the OAuth2 user into the new record on sign-up (only into empty fields).</p>
        <div class="grid-2">
          {MAPPED.map(([k, label]) => (
            <Row label={label} error={errAt(err, `oauth2.mappedFields.${k}`)}>
              {(id) => (
                <select id={id} name={`mappedFields.${k}`} value={(o.mappedFields || {})[k] || ''} onChange={(e) => setOpt(props, 'oauth2', { mappedFields: { ...(o.mappedFields || {}), [k]: (e.target as HTMLSelectElement).value } })}>
                  <option value="">— none —</option>
                  {fieldNames.map((n: string) => <option value={n}>{n}</option>)}
                  {(o.mappedFields || {})[k] && !fieldNames.includes((o.mappedFields || {})[k]) && <option value={(o.mappedFields || {})[k]}>{(o.mappedFields || {})[k]} (missing)</option>}
                </select>
              )}
            </Row>
          ))}
        </div>
      </fieldset>
    </Section>
  );
}

/** A modal list of every provider not yet configured, filtered by a search box. */
function ProviderPicker({ catalog, taken, onPick, onClose }: { catalog: ProviderInfo[] | null; taken: Set<string>; onPick: (name: string) => void; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [q, setQ] = useState('');
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => { if (d?.open) d.close(); };
  }, []);
  const needle = q.trim().toLowerCase();
  const shown = (catalog || []).filter((c) => !taken.has(c.name) && (!needle || c.name.toLowerCase().includes(needle) || c.displayName.toLowerCase().includes(needle)));
  return (
    <dialog ref={ref} class="picker" aria-labelledby="picker-title" onCancel={(e) => { e.preventDefault(); onClose(); }}
      onKeyDown={(e) => { if (e.key === 'Escape') { e.preventDefault(); onClose(); } }}>
      <div class="page-head">
        <h2 id="picker-title">Add OAuth2 provider</h2>
        <span class="spacer" />
        <button type="button" class="icon-btn" aria-label="Close" onClick={onClose}>✕</button>
      </div>
      <label class="sr-only" for="provider-search">Search providers</label>
      <input id="provider-search" type="text" autoComplete="off" placeholder="Search providers" value={q} autoFocus onInput={(e) => setQ((e.target as HTMLInputElement).value)} />
      <ul class="picker-grid" aria-label="Providers">
        {shown.map((c) => (
          <li>
            <button type="button" class="picker-item" data-pick={c.name} onClick={() => onPick(c.name)}>
              <Logo svg={c.logo} size={28} />
              <span>{c.displayName}</span>
              <code class="muted small">{c.name}</code>
            </button>
          </li>
        ))}
        {catalog && shown.length === 0 && <li class="muted">No provider matches.</li>}
        {!catalog && <li class="muted">Loading…</li>}
      </ul>
    </dialog>
  );
}
