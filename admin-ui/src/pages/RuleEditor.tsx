// One API rule: locked (null: superusers only), public ("": everyone) or an
// expression. The expression box completes field names, `@request.*` and
// `@collection.*`; the collection editor checks the whole draft against the
// server as you type and passes back the server's message for this rule.
import { useRef, useState } from 'preact/hooks';
import { useId } from '../ui';

type Props = {
  ruleKey: string;
  label: string;
  value: string | null;
  onChange: (v: string | null) => void;
  error?: string;
  checking?: boolean;
  candidates: string[];
  allowPublic?: boolean;
  /** False hides "Superusers only" (rules that cannot be null, like MFA's). */
  allowLocked?: boolean;
  /** Wording of the empty-rule mode; the default is about API access. */
  emptyLabel?: string;
  emptyHint?: string;
};

export function RuleEditor(p: Props) {
  const id = useId('rule');
  const [custom, setCustom] = useState(p.value !== null && p.value !== '');
  const mode = p.value === null ? 'locked' : p.value === '' && !custom ? 'public' : 'custom';
  const ta = useRef<HTMLTextAreaElement>(null);
  const [sugg, setSugg] = useState<string[]>([]);
  const [active, setActive] = useState(0);

  const setMode = (m: string) => {
    setCustom(m === 'custom');
    if (m === 'locked') p.onChange(null);
    else if (m === 'public') p.onChange('');
    else {
      p.onChange(p.value || '');
      setTimeout(() => ta.current?.focus(), 0);
    }
  };

  const currentWord = (el: HTMLTextAreaElement) => {
    const before = el.value.slice(0, el.selectionStart ?? el.value.length);
    const m = /[@\w.]*$/.exec(before);
    return m ? m[0] : '';
  };
  const update = (el: HTMLTextAreaElement) => {
    const w = currentWord(el);
    if (!w) return setSugg([]);
    const lw = w.toLowerCase();
    const list = p.candidates.filter((c) => c.toLowerCase().startsWith(lw) && c !== w).slice(0, 8);
    setSugg(list);
    setActive(0);
  };
  const accept = (s: string) => {
    const el = ta.current;
    if (!el) return;
    const pos = el.selectionStart ?? el.value.length;
    const w = currentWord(el);
    const next = el.value.slice(0, pos - w.length) + s + el.value.slice(pos);
    const caret = pos - w.length + s.length;
    // Update the box and the caret now, not after the re-render: keys typed
    // right after accepting must land after the completion.
    el.value = next;
    el.setSelectionRange(caret, caret);
    el.focus();
    p.onChange(next);
    setSugg([]);
  };
  const onKey = (e: KeyboardEvent) => {
    if (!sugg.length) return;
    if (e.key === 'ArrowDown') { e.preventDefault(); setActive((active + 1) % sugg.length); }
    else if (e.key === 'ArrowUp') { e.preventDefault(); setActive((active - 1 + sugg.length) % sugg.length); }
    else if (e.key === 'Enter' || e.key === 'Tab') { e.preventDefault(); accept(sugg[active]); }
    else if (e.key === 'Escape') { e.preventDefault(); setSugg([]); }
  };

  return (
    <fieldset class={'rule' + (p.error ? ' has-error' : '')} data-rule={p.ruleKey}>
      <legend>{p.label} rule <code class="muted small">{p.ruleKey}</code></legend>
      <div class="segmented" role="radiogroup" aria-label={`${p.label} rule mode`}>
        {p.allowLocked !== false && (
          <button type="button" role="radio" aria-checked={mode === 'locked'} class={mode === 'locked' ? 'on' : ''} onClick={() => setMode('locked')}>Superusers only</button>
        )}
        {p.allowPublic !== false && (
          <button type="button" role="radio" aria-checked={mode === 'public'} class={mode === 'public' ? 'on' : ''} onClick={() => setMode('public')}>{p.emptyLabel || 'Public (anyone)'}</button>
        )}
        <button type="button" role="radio" aria-checked={mode === 'custom'} class={mode === 'custom' ? 'on' : ''} onClick={() => setMode('custom')}>Custom expression</button>
      </div>
      {mode === 'locked' && <p class="hint">Rule is <code>null</code>: only superusers can do this.</p>}
      {mode === 'public' && <p class={'hint' + (p.emptyHint ? '' : ' warn')}>{p.emptyHint || <>Rule is empty (<code>""</code>): everyone, including guests, can do this.</>}</p>}
      {mode === 'custom' && (
        <div class="rule-input">
          <label for={id} class="sr-only">{p.label} rule expression</label>
          <textarea
            id={id}
            ref={ta}
            rows={2}
            spellcheck={false}
            autoComplete="off"
            placeholder="e.g. @request.auth.id != '' && owner = @request.auth.id"
            value={p.value || ''}
            aria-autocomplete="list"
            aria-controls={id + '-list'}
            aria-invalid={!!p.error}
            onInput={(e) => { const el = e.target as HTMLTextAreaElement; p.onChange(el.value); update(el); }}
            onKeyDown={onKey as any}
            onBlur={() => setTimeout(() => setSugg([]), 150)}
          />
          {sugg.length > 0 && (
            <ul class="suggestions" role="listbox" id={id + '-list'}>
              {sugg.map((s, i) => (
                <li role="option" aria-selected={i === active} class={i === active ? 'on' : ''} onMouseDown={(e) => { e.preventDefault(); accept(s); }}>
                  {s}
                </li>
              ))}
            </ul>
          )}
          <div class="rule-status" aria-live="polite">
            {p.error ? <span class="field-error">{p.error}</span> : p.checking ? <span class="muted small">Checking…</span> : (p.value || '') !== '' ? <span class="ok small">✓ Valid expression</span> : <span class="hint warn">{p.emptyHint ? 'Empty expression: ' + p.emptyHint : 'Empty expression = public.'}</span>}
          </div>
        </div>
      )}
    </fieldset>
  );
}

/** Completion candidates for a collection's rules. */
export function ruleCandidates(collection: any, collections: any[]): string[] {
  const fields = (collection.fields || []).map((f: any) => f.name).filter(Boolean);
  const users = collections.filter((c) => c.type === 'auth' && !c.system);
  const authFields = new Set<string>(['id', 'collectionName', 'collectionId', 'email', 'verified']);
  users.forEach((u) => u.fields.forEach((f: any) => authFields.add(f.name)));
  const out: string[] = [...fields];
  for (const f of fields) out.push(`${f}:isset`, `${f}:changed`, `${f}:length`, `${f}:each`, `${f}:lower`);
  // Relation paths (`author.name`) and back-relations (`comments_via_post`).
  for (const f of collection.fields || []) {
    if (f.type !== 'relation') continue;
    const target = collections.find((c) => c.id === f.collectionId);
    for (const tf of target?.fields || []) out.push(`${f.name}.${tf.name}`);
  }
  if (collection.id) {
    for (const c of collections)
      for (const f of c.fields || [])
        if (f.type === 'relation' && f.collectionId === collection.id) out.push(`${c.name}_via_${f.name}`, ...(c.fields || []).map((x: any) => `${c.name}_via_${f.name}.${x.name}`));
  }
  out.push('@request.auth.', ...[...authFields].map((f) => `@request.auth.${f}`));
  out.push('@request.body.', ...fields.map((f: string) => `@request.body.${f}`));
  out.push('@request.query.', '@request.headers.', '@request.method', '@request.context');
  out.push('@collection.', ...collections.map((c) => `@collection.${c.name}.`));
  out.push('@now', '@second', '@minute', '@hour', '@weekday', '@day', '@month', '@year', '@todayStart', '@todayEnd', '@monthStart', '@monthEnd', '@yearStart', '@yearEnd');
  for (const c of collections) for (const f of c.fields || []) out.push(`@collection.${c.name}.${f.name}`);
  return [...new Set(out)];
}
