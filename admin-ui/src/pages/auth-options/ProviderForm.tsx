// One configured OAuth2 provider: client id, client secret (write-only),
// display name, PKCE, and the endpoints and `extra` settings the server
// accepts for that provider (src/schema/oauth2.rs, oauth2_catalog.rs):
// OIDC and mailcow must name their endpoints, GitLab and Gitea may point at
// a self-hosted instance, Microsoft at a tenant, Lark at its site; Apple
// gets a helper that signs a client secret.
import { useState } from 'preact/hooks';
import { api } from '../../api';
import { ListInput, Row, toast } from '../../ui';
import { ProviderInfo, errAt } from './common';

type Props = {
  p: any;
  index: number;
  info?: ProviderInfo;
  /** Whether the server already stores a secret for this provider. */
  hasStoredSecret: boolean;
  err: unknown;
  onChange: (patch: any) => void;
};

const OIDC = ['oidc', 'oidc2', 'oidc3'];
const SELF_HOSTED: Record<string, { required: boolean; title: string; example: string }> = {
  oidc: { required: true, title: 'Endpoints', example: 'https://example.com/oauth2' },
  oidc2: { required: true, title: 'Endpoints', example: 'https://example.com/oauth2' },
  oidc3: { required: true, title: 'Endpoints', example: 'https://example.com/oauth2' },
  mailcow: { required: true, title: 'Endpoints of your mailcow server', example: 'https://mail.example.com/oauth' },
  gitlab: { required: false, title: 'Self-hosted endpoints (optional)', example: 'https://gitlab.example.com/oauth' },
  gitea: { required: false, title: 'Self-hosted endpoints (optional)', example: 'https://gitea.example.com/login/oauth' },
};
const MS_EMAIL_MODES: [string, string][] = [
  ['', 'Graph API "mail" field (default; not trusted as verified)'],
  ['verified_primary_email', '"verified_primary_email" id_token claim'],
  ['email_and_xms_edov', '"email" + "xms_edov" id_token claims'],
  ['any_verified', 'Either of the two above'],
];
const LARK_SITES: [string, string][] = [['feishu.cn', 'Feishu (China)'], ['larksuite.com', 'Lark (International)']];

export function ProviderForm({ p, index, info, hasStoredSecret, err, onChange }: Props) {
  const e = (k: string) => errAt(err, `oauth2.providers.${index}.${k}`);
  const name: string = p.name;
  const extra = p.extra && typeof p.extra === 'object' ? p.extra : {};
  const setExtra = (patch: any) => onChange({ extra: { ...extra, ...patch } });
  const url = (k: 'authURL' | 'tokenURL' | 'userInfoURL', label: string, placeholder: string, hint?: string) => (
    <Row label={label} error={e(k)} hint={hint}>
      {(id) => <input id={id} type="url" name={k} value={p[k] || ''} placeholder={placeholder} aria-invalid={!!e(k)} onInput={(ev) => onChange({ [k]: (ev.target as HTMLInputElement).value })} />}
    </Row>
  );
  const hosted = SELF_HOSTED[name];

  return (
    <div class="provider-form" data-provider-form={name}>
      <div class="grid-2">
        <Row label="Client ID" error={e('clientId')}>
          {(id) => <input id={id} name="clientId" value={p.clientId || ''} autoComplete="off" aria-invalid={!!e('clientId')} onInput={(ev) => onChange({ clientId: (ev.target as HTMLInputElement).value })} />}
        </Row>
        <Row label="Client secret" error={e('clientSecret')} hint={hasStoredSecret ? 'Leave empty to keep the stored secret.' : undefined}>
          {(id) => (
            <input id={id} name="clientSecret" type="password" autoComplete="new-password" value={p.clientSecret || ''} aria-invalid={!!e('clientSecret')}
              placeholder={hasStoredSecret ? 'unchanged' : ''} onInput={(ev) => onChange({ clientSecret: (ev.target as HTMLInputElement).value })} />
          )}
        </Row>
        <Row label="Display name" error={e('displayName')}>
          {(id) => <input id={id} name="displayName" value={p.displayName || ''} placeholder={info?.displayName || name} onInput={(ev) => onChange({ displayName: (ev.target as HTMLInputElement).value })} />}
        </Row>
        <Row label="PKCE" error={e('pkce')} hint="Proof Key for Code Exchange; the provider's default unless set.">
          {(id) => (
            <select id={id} name="pkce" value={p.pkce === true ? 'on' : p.pkce === false ? 'off' : ''} onChange={(ev) => { const v = (ev.target as HTMLSelectElement).value; onChange({ pkce: v === 'on' ? true : v === 'off' ? false : null }); }}>
              <option value="">Provider default</option>
              <option value="on">Always use PKCE</option>
              <option value="off">Never use PKCE</option>
            </select>
          )}
        </Row>
      </div>

      {name === 'apple' && <AppleSecret clientId={p.clientId || ''} onSecret={(s) => onChange({ clientSecret: s })} />}

      {hosted && (
        <fieldset class="provider-extra">
          <legend>{hosted.title}</legend>
          {url('authURL', 'Auth URL' + (hosted.required ? '' : ' (optional)'), `${hosted.example}/authorize`)}
          {url('tokenURL', 'Token URL' + (hosted.required ? '' : ' (optional)'), `${hosted.example}/token`)}
          {url('userInfoURL', 'User info URL' + (hosted.required && !OIDC.includes(name) ? '' : ' (optional)'), `${hosted.example}/userinfo`,
            OIDC.includes(name) ? 'Without it, the user is read from the id_token of the token answer.' : undefined)}
        </fieldset>
      )}

      {OIDC.includes(name) && (
        <fieldset class="provider-extra">
          <legend>id_token checks (optional)</legend>
          <Row label="JWKS verification URL" error={e('extra.jwksURL')} hint="The provider's public keys; the id_token's signature is checked against them.">
            {(id) => <input id={id} type="url" name="jwksURL" value={extra.jwksURL || ''} placeholder="https://example.com/.well-known/jwks.json" onInput={(ev) => setExtra({ jwksURL: (ev.target as HTMLInputElement).value })} />}
          </Row>
          <Row label="Issuers" error={e('extra.issuers')} hint="Comma separated; the id_token's iss must be one of them.">
            {(id) => <ListInput id={id} name="issuers" value={Array.isArray(extra.issuers) ? extra.issuers : []} placeholder="https://example.com" onChange={(v) => setExtra({ issuers: v })} />}
          </Row>
        </fieldset>
      )}

      {name === 'microsoft' && (
        <fieldset class="provider-extra">
          <legend>Azure AD / Entra ID (optional)</legend>
          {url('authURL', 'Auth URL', 'https://login.microsoftonline.com/common/oauth2/v2.0/authorize', 'For one tenant: https://login.microsoftonline.com/TENANT_ID/oauth2/v2.0/authorize')}
          {url('tokenURL', 'Token URL', 'https://login.microsoftonline.com/common/oauth2/v2.0/token', 'For one tenant: https://login.microsoftonline.com/TENANT_ID/oauth2/v2.0/token')}
          <Row label="Extract email from" error={e('extra.idTokenEmailClaim')}>
            {(id) => (
              <select id={id} name="idTokenEmailClaim" value={extra.idTokenEmailClaim || ''} onChange={(ev) => setExtra({ idTokenEmailClaim: (ev.target as HTMLSelectElement).value })}>
                {MS_EMAIL_MODES.map(([v, l]) => <option value={v}>{l}</option>)}
              </select>
            )}
          </Row>
        </fieldset>
      )}

      {name === 'lark' && (
        <Row label="Site" error={e('authURL')}>
          {(id) => (
            <select id={id} name="larkSite" value={(p.authURL || '').includes('larksuite.com') ? 'larksuite.com' : 'feishu.cn'} onChange={(ev) => {
              const d = (ev.target as HTMLSelectElement).value;
              onChange({
                authURL: `https://accounts.${d}/open-apis/authen/v1/authorize`,
                tokenURL: `https://open.${d}/open-apis/authen/v2/oauth/token`,
                userInfoURL: `https://open.${d}/open-apis/authen/v1/user_info`,
              });
            }}>
              {LARK_SITES.map(([v, l]) => <option value={v}>{l}</option>)}
            </select>
          )}
        </Row>
      )}
    </div>
  );
}

/** Signs an Apple client secret (a JWT) on the server from the team's key, and fills it in. */
function AppleSecret({ clientId, onSecret }: { clientId: string; onSecret: (s: string) => void }) {
  const [open, setOpen] = useState(false);
  const [form, setForm] = useState({ teamId: '', keyId: '', privateKey: '', duration: 15777000 });
  const [error, setError] = useState<any>(null);
  const [busy, setBusy] = useState(false);
  const e = (k: string) => errAt(error, k);
  const generate = async () => {
    setBusy(true);
    setError(null);
    try {
      const r = await api('POST', '/api/settings/apple/generate-client-secret', { clientId, ...form, privateKey: form.privateKey.trim() });
      onSecret(r.secret);
      setOpen(false);
      setForm({ ...form, privateKey: '' });
      toast('Generated the Apple client secret.');
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  if (!open) return <div class="actions-left"><button type="button" class="btn small" onClick={() => setOpen(true)}>Generate secret</button></div>;
  return (
    <fieldset class="provider-extra">
      <legend>Generate Apple client secret</legend>
      {error && !e('teamId') && !e('keyId') && !e('privateKey') && !e('duration') && <div class="field-error" role="alert">{error.message}</div>}
      {e('clientId') && <div class="field-error" role="alert">Client ID: {e('clientId')}</div>}
      <div class="grid-2">
        <Row label="Team ID" error={e('teamId')}>{(id) => <input id={id} value={form.teamId} onInput={(ev) => setForm({ ...form, teamId: (ev.target as HTMLInputElement).value })} />}</Row>
        <Row label="Key ID" error={e('keyId')}>{(id) => <input id={id} value={form.keyId} onInput={(ev) => setForm({ ...form, keyId: (ev.target as HTMLInputElement).value })} />}</Row>
        <Row label="Duration (seconds)" error={e('duration')} hint="At most about 6 months (15777000 s).">{(id) => <input id={id} type="number" value={form.duration} onInput={(ev) => setForm({ ...form, duration: Number((ev.target as HTMLInputElement).value) })} />}</Row>
      </div>
      <Row label="Private key (.p8)" error={e('privateKey')}>
        {(id) => <textarea id={id} rows={5} spellcheck={false} value={form.privateKey} placeholder="-----BEGIN PRIVATE KEY-----" onInput={(ev) => setForm({ ...form, privateKey: (ev.target as HTMLTextAreaElement).value })} />}
      </Row>
      <div class="actions-left">
        <button type="button" class="btn ghost small" onClick={() => setOpen(false)}>Cancel</button>
        <button type="button" class="btn primary small" disabled={busy} onClick={generate}>{busy ? 'Generating…' : 'Generate and use'}</button>
      </div>
    </fieldset>
  );
}
