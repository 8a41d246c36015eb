// The five emails of an auth collection: subject and HTML body of each, the
// placeholders it may use, and a test send of the saved template
// (POST /api/settings/test/email) to an address of the superuser's choice.
import { useState } from 'preact/hooks';
import { ApiError, api, auth } from '../../api';
import { Row, toast } from '../../ui';
import { Section, SectionProps, errAt, hasErrorAt, opt } from './common';

type Tpl = {
  /** Where the template lives: `verificationTemplate` or `otp` › `emailTemplate`. */
  key: string;
  nested?: string;
  title: string;
  /** The `template` value of the test email endpoint. */
  test: string;
  placeholders: string[];
};

const COMMON = ['{APP_NAME}', '{APP_URL}', '{RECORD:email}', '{RECORD:…}'];
export const TEMPLATES: Tpl[] = [
  { key: 'verificationTemplate', title: 'Verification', test: 'verification', placeholders: [...COMMON, '{TOKEN}'] },
  { key: 'resetPasswordTemplate', title: 'Password reset', test: 'password-reset', placeholders: [...COMMON, '{TOKEN}'] },
  { key: 'confirmEmailChangeTemplate', title: 'Confirm email change', test: 'email-change', placeholders: [...COMMON, '{TOKEN}'] },
  { key: 'otp', nested: 'emailTemplate', title: 'One-time password (OTP)', test: 'otp', placeholders: [...COMMON, '{OTP}', '{OTP_ID}'] },
  { key: 'authAlert', nested: 'emailTemplate', title: 'Login alert', test: 'login-alert', placeholders: [...COMMON, '{ALERT_INFO}'] },
];

const pathOf = (t: Tpl) => (t.nested ? `${t.key}.${t.nested}` : t.key);

export function MailTemplatesSection(props: SectionProps & { dirty: boolean }) {
  const { draft, err } = props;
  const [to, setTo] = useState<string>(auth.session?.record?.email || '');
  const get = (t: Tpl) => (t.nested ? opt(draft, t.key)[t.nested] : draft[t.key]) || {};
  const put = (t: Tpl, patch: any) => {
    const next = { ...get(t), ...patch };
    props.set({ [t.key]: t.nested ? { ...opt(draft, t.key), [t.nested]: next } : next });
  };
  const anyErr = TEMPLATES.some((t) => hasErrorAt(err, pathOf(t)));
  return (
    <Section id="templates" title="Mail templates" error={anyErr}>
      <Row label="Send test emails to" hint={<>A test email uses the <strong>saved</strong> template{props.dirty ? ' — save your changes first' : ''}, with sample values for the placeholders.</>}>
        {(id) => <input id={id} type="email" name="testEmailTo" value={to} placeholder="you@example.com" onInput={(e) => setTo((e.target as HTMLInputElement).value)} />}
      </Row>
      {TEMPLATES.map((t) => <Template t={t} value={get(t)} err={err} to={to} collection={draft.name} canTest={!!props.initial} onChange={(p) => put(t, p)} />)}
    </Section>
  );
}

function Template({ t, value, err, to, collection, canTest, onChange }: { t: Tpl; value: any; err: unknown; to: string; collection: string; canTest: boolean; onChange: (p: any) => void }) {
  const [open, setOpen] = useState(false);
  const [sending, setSending] = useState(false);
  const [sendErr, setSendErr] = useState<string | null>(null);
  const path = pathOf(t);
  const e = (k: string) => errAt(err, `${path}.${k}`);
  const shown = open || hasErrorAt(err, path);
  const send = async () => {
    setSending(true);
    setSendErr(null);
    try {
      await api('POST', '/api/settings/test/email', { email: to, template: t.test, collection });
      toast(`Sent the ${t.title.toLowerCase()} test email to ${to}.`);
    } catch (x) {
      const detail = x instanceof ApiError ? errAt(x, 'email') || errAt(x, 'template') || errAt(x, 'collection') : undefined;
      setSendErr(detail ? `${x instanceof Error ? x.message : ''} ${detail}` : x instanceof Error ? x.message : String(x));
    } finally {
      setSending(false);
    }
  };
  return (
    <div class={'template-card' + (hasErrorAt(err, path) ? ' has-error' : '')} data-template={t.test}>
      <div class="provider-head">
        <strong>{t.title}</strong>
        <span class="muted small template-subject">{value.subject}</span>
        <span class="spacer" />
        <button type="button" class="btn small ghost" aria-expanded={shown} aria-label={`${shown ? 'Close' : 'Edit'} ${t.title} template`} onClick={() => setOpen(!shown)}>{shown ? 'Close' : 'Edit'}</button>
      </div>
      {shown && (
        <div class="template-body">
          <Row label="Subject" error={e('subject')}>
            {(id) => <input id={id} name={`${path}.subject`} value={value.subject || ''} aria-invalid={!!e('subject')} onInput={(ev) => onChange({ subject: (ev.target as HTMLInputElement).value })} />}
          </Row>
          <Row label="Body (HTML)" error={e('body')}>
            {(id) => <textarea id={id} name={`${path}.body`} rows={10} spellcheck={false} class="mono" value={value.body || ''} aria-invalid={!!e('body')} onInput={(ev) => onChange({ body: (ev.target as HTMLTextAreaElement).value })} />}
          </Row>
          <p class="hint placeholders">Placeholders: {t.placeholders.map((p) => <code>{p}</code>)}</p>
          <div class="actions-left">
            <button type="button" class="btn small" disabled={!canTest || sending || !to.trim()} onClick={send} title={canTest ? undefined : 'Create the collection first.'}>{sending ? 'Sending…' : 'Send test email'}</button>
            {sendErr && <span class="field-error" role="alert">{sendErr}</span>}
          </div>
        </div>
      )}
    </div>
  );
}
