// Pieces shared by the auth options sections: the props every section gets,
// a collapsible section, a whole-number input row, the provider catalog
// (loaded once) and a provider logo rendered as an image, never as markup.
import { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, fieldError } from '../../api';
import { Row } from '../../ui';

export type SectionProps = {
  draft: any;
  set: (patch: any) => void;
  err: unknown;
  /** The collection as stored (undefined while creating one). */
  initial?: any;
  collections: any[];
  checking?: boolean;
};

/** The draft's value of an option object, or `{}`. */
export const opt = (draft: any, key: string): any => (draft[key] && typeof draft[key] === 'object' ? draft[key] : {});

/** Merges `patch` into the option object `key` of the draft. */
export const setOpt = (p: SectionProps, key: string, patch: any) => p.set({ [key]: { ...opt(p.draft, key), ...patch } });

/** Whether the server's error data has anything under `path`. */
export function hasErrorAt(err: unknown, path: string): boolean {
  let cur: any = (err as any)?.data;
  for (const part of path.split('.')) {
    if (cur == null || typeof cur !== 'object') return false;
    cur = cur[part];
  }
  return cur != null;
}

/** A collapsible block; open by default when it holds an error. */
export function Section(props: { title: string; id: string; badge?: ComponentChildren; error?: boolean; open?: boolean; children: ComponentChildren }) {
  const [open, setOpen] = useState(!!props.open);
  const shown = open || !!props.error;
  return (
    <details class={'auth-section' + (props.error ? ' has-error' : '')} data-section={props.id} open={shown} onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
      <summary>
        <span class="auth-section-title">{props.title}</span>
        {props.badge}
        {props.error && <span class="dot-error" aria-label="has errors" />}
      </summary>
      <div class="auth-section-body">{props.children}</div>
    </details>
  );
}

export function EnabledBadge({ on }: { on: boolean }) {
  return <span class={'tag' + (on ? ' tag-on' : '')}>{on ? 'Enabled' : 'Disabled'}</span>;
}

/** A whole-number input for `obj[field]`; an empty box sends 0, which the server reports as required. */
export function NumberRow(props: { label: string; name: string; value: any; error?: string; hint?: ComponentChildren; min?: number; onChange: (v: number) => void }) {
  return (
    <Row label={props.label} error={props.error} hint={props.hint}>
      {(id) => (
        <input id={id} type="number" name={props.name} min={props.min} step={1} value={props.value ?? ''} aria-invalid={!!props.error}
          onInput={(e) => { const v = (e.target as HTMLInputElement).value; props.onChange(v === '' ? 0 : Number(v)); }} />
      )}
    </Row>
  );
}

/** A field error at a dotted path, for convenience in sections. */
export const errAt = fieldError;

/** 50 random letters and digits: a new token secret (what PocketBase's dashboard sends to invalidate tokens). */
export function randomSecret(length = 50): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const bytes = new Uint8Array(length);
  crypto.getRandomValues(bytes);
  // 248 = 62 * 4: rejecting bytes above it keeps every character equally likely.
  let out = '';
  while (out.length < length) {
    for (const b of bytes) if (b < 248 && out.length < length) out += alphabet[b % 62];
    crypto.getRandomValues(bytes);
  }
  return out;
}

export type ProviderInfo = { name: string; displayName: string; logo: string };
let catalog: Promise<ProviderInfo[]> | null = null;

/** The server's OAuth2 provider list (`GET /api/collections/meta/oauth2-providers`), fetched once. */
export function useProviderCatalog(): ProviderInfo[] | null {
  const [list, setList] = useState<ProviderInfo[] | null>(null);
  useEffect(() => {
    if (!catalog) catalog = api('GET', '/api/collections/meta/oauth2-providers').then((r) => (Array.isArray(r) ? r : []));
    let live = true;
    catalog.then((r) => live && setList(r)).catch(() => { catalog = null; live && setList([]); });
    return () => { live = false; };
  }, []);
  return list;
}

/** A provider's logo: its SVG text as a data: URL in an <img>, so nothing in it can run or style the page. */
export function Logo({ svg, size = 24 }: { svg?: string; size?: number }) {
  if (!svg) return <span class="provider-logo empty" style={{ width: size, height: size }} aria-hidden="true" />;
  return <img class="provider-logo" src={'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(svg)} width={size} height={size} alt="" />;
}
