// Small shared pieces: labelled form rows with the server's field errors,
// a modal confirmation built on <dialog>, toasts and the theme toggle.
import { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, allFieldErrors } from './api';

let uid = 0;
export function useId(prefix = 'f') {
  const ref = useRef<string | undefined>(undefined);
  if (!ref.current) ref.current = `${prefix}${++uid}`;
  return ref.current;
}

export function Row(props: { label: string; error?: string; hint?: ComponentChildren; children: (id: string) => ComponentChildren; class?: string }) {
  const id = useId();
  return (
    <div class={'row ' + (props.class || '') + (props.error ? ' has-error' : '')}>
      <label for={id}>{props.label}</label>
      {props.children(id)}
      {props.hint && !props.error && <div class="hint">{props.hint}</div>}
      {props.error && (
        <div class="field-error" role="alert">
          {props.error}
        </div>
      )}
    </div>
  );
}

export function Check(props: { label: string; checked: boolean; onChange: (v: boolean) => void; disabled?: boolean; title?: string; name?: string }) {
  return (
    <label class="check" title={props.title}>
      <input type="checkbox" name={props.name} checked={props.checked} disabled={props.disabled} onChange={(e) => props.onChange((e.target as HTMLInputElement).checked)} />
      <span>{props.label}</span>
    </label>
  );
}

export function ErrorBanner({ error }: { error: unknown }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  const details = error instanceof ApiError ? allFieldErrors(error.data) : [];
  return (
    <div class="banner error" role="alert">
      <strong>{message}</strong>
      {details.length > 0 && (
        <ul>
          {details.map((d) => (
            <li>{d}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

// ---- confirmation dialog -------------------------------------------------

type Ask = { message: string; confirm: string; resolve: (ok: boolean) => void };
let setAsk: ((a: Ask | null) => void) | null = null;

/** Resolves true when the user confirms. Used before anything destructive. */
export function confirmDanger(message: string, confirm = 'Delete'): Promise<boolean> {
  return new Promise((resolve) => {
    if (!setAsk) return resolve(window.confirm(message));
    setAsk({ message, confirm, resolve });
  });
}

export function ConfirmHost() {
  const [ask, set] = useState<Ask | null>(null);
  const ref = useRef<HTMLDialogElement>(null);
  setAsk = set;
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (ask && !d.open) d.showModal();
    if (!ask && d.open) d.close();
  }, [ask]);
  const done = (ok: boolean) => {
    ask?.resolve(ok);
    set(null);
  };
  return (
    <dialog ref={ref} class="confirm" onCancel={(e) => { e.preventDefault(); done(false); }} aria-labelledby="confirm-msg">
      <p id="confirm-msg">{ask?.message}</p>
      <div class="actions">
        <button type="button" class="btn" onClick={() => done(false)}>
          Cancel
        </button>
        <button type="button" class="btn danger" data-testid="confirm-yes" onClick={() => done(true)}>
          {ask?.confirm}
        </button>
      </div>
    </dialog>
  );
}

// ---- toasts --------------------------------------------------------------

let pushToast: ((t: string) => void) | null = null;
export function toast(text: string) {
  pushToast?.(text);
}

export function ToastHost() {
  const [items, setItems] = useState<{ id: number; text: string }[]>([]);
  pushToast = (text) => {
    const id = ++uid;
    setItems((xs) => [...xs.slice(-2), { id, text }]);
    setTimeout(() => setItems((xs) => xs.filter((x) => x.id !== id)), 2500);
  };
  return (
    <div class="toasts" role="status" aria-live="polite">
      {items.map((t) => (
        <div class="toast" key={t.id}>
          {t.text}
        </div>
      ))}
    </div>
  );
}

// ---- theme ---------------------------------------------------------------

export function ThemeToggle() {
  const [theme, setTheme] = useState<string>(document.documentElement.dataset.theme || '');
  const cycle = () => {
    const next = theme === '' ? 'dark' : theme === 'dark' ? 'light' : '';
    setTheme(next);
    if (next) {
      document.documentElement.dataset.theme = next;
      localStorage.setItem('fb_theme', next);
    } else {
      delete document.documentElement.dataset.theme;
      localStorage.removeItem('fb_theme');
    }
  };
  const label = theme === '' ? 'Theme: system' : theme === 'dark' ? 'Theme: dark' : 'Theme: light';
  return (
    <button type="button" class="btn ghost small" onClick={cycle} title="Switch between system, dark and light themes">
      {label}
    </button>
  );
}

export function Spinner() {
  return <span class="spinner" aria-label="Loading" />;
}

/** A debounced copy of `value`. */
export function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

/** A comma-separated list edited as text; the array is sent on every keystroke. */
export function ListInput({ id, name, value, placeholder, onChange }: { id: string; name: string; value: string[]; placeholder?: string; onChange: (v: string[]) => void }) {
  const [textValue, setText] = useState(value.join(', '));
  const parse = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
  const shown = parse(textValue).join('\u0000') === value.join('\u0000') ? textValue : value.join(', ');
  return <input id={id} name={name} value={shown} placeholder={placeholder} onInput={(e) => { const t = (e.target as HTMLInputElement).value; setText(t); onChange(parse(t)); }} />;
}
