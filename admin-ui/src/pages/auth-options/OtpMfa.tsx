// Password sign-in, one-time passwords by email, multi-factor sign-in (with
// the rule of which accounts need it) and the new-location login alert.
import { Check, ListInput, Row } from '../../ui';
import { RuleEditor, ruleCandidates } from '../RuleEditor';
import { EnabledBadge, NumberRow, Section, SectionProps, errAt, hasErrorAt, opt, setOpt } from './common';

export function PasswordSection(props: SectionProps & { superusers: boolean }) {
  const { draft, err } = props;
  const pa = opt(draft, 'passwordAuth');
  return (
    <Section id="passwordAuth" title="Identity/Password" badge={<EnabledBadge on={!!pa.enabled} />} error={hasErrorAt(err, 'passwordAuth')} open>
      <Check label="Allow email/password sign-in" name="passwordAuth.enabled" checked={!!pa.enabled} disabled={props.superusers}
        title={props.superusers ? 'Superusers always sign in with a password.' : undefined} onChange={(v) => setOpt(props, 'passwordAuth', { enabled: v })} />
      <Row label="Identity fields" error={errAt(err, 'passwordAuth.identityFields')} hint="Comma separated; each needs a unique index.">
        {(id) => <ListInput id={id} name="identityFields" value={pa.identityFields || []} onChange={(v) => setOpt(props, 'passwordAuth', { identityFields: v })} />}
      </Row>
    </Section>
  );
}

export function OtpSection(props: SectionProps & { superusers: boolean }) {
  const { draft, err } = props;
  const otp = opt(draft, 'otp');
  return (
    <Section id="otp" title="One-time password (OTP)" badge={<EnabledBadge on={!!otp.enabled} />} error={hasErrorAt(err, 'otp.enabled') || hasErrorAt(err, 'otp.duration') || hasErrorAt(err, 'otp.length')}>
      <Check label="Enable OTP sign-in by email" name="otp.enabled" checked={!!otp.enabled} onChange={(v) => setOpt(props, 'otp', { enabled: v })} />
      {props.superusers && <p class="hint">For superusers, OTP can only be a second factor: enabling it also enables MFA.</p>}
      <div class="grid-2">
        <NumberRow label="Duration (seconds)" name="otp.duration" value={otp.duration} error={errAt(err, 'otp.duration')} min={10} onChange={(v) => setOpt(props, 'otp', { duration: v })} />
        <NumberRow label="Password length" name="otp.length" value={otp.length} error={errAt(err, 'otp.length')} min={4} onChange={(v) => setOpt(props, 'otp', { length: v })} />
      </div>
      <p class="hint">The email it sends is under Mail templates.</p>
    </Section>
  );
}

export function MfaSection(props: SectionProps) {
  const { draft, err, collections } = props;
  const mfa = opt(draft, 'mfa');
  return (
    <Section id="mfa" title="Multi-factor authentication (MFA)" badge={<EnabledBadge on={!!mfa.enabled} />} error={hasErrorAt(err, 'mfa')}>
      <Check label="Enable MFA" name="mfa.enabled" checked={!!mfa.enabled} onChange={(v) => setOpt(props, 'mfa', { enabled: v })} />
      <p class="hint">A sign-in has to be completed with a second, different method (password, OTP or OAuth2) within the duration.</p>
      <NumberRow label="Duration (seconds)" name="mfa.duration" value={mfa.duration} error={errAt(err, 'mfa.duration')} min={10} onChange={(v) => setOpt(props, 'mfa', { duration: v })} />
      <RuleEditor ruleKey="mfa.rule" label="MFA" value={mfa.rule ?? ''} allowLocked={false} emptyLabel="Every account"
        emptyHint="MFA applies to every account." candidates={ruleCandidates(draft, collections)} checking={props.checking}
        error={errAt(err, 'mfa.rule')} onChange={(v) => setOpt(props, 'mfa', { rule: v ?? '' })} />
    </Section>
  );
}

export function AuthAlertSection(props: SectionProps) {
  const a = opt(props.draft, 'authAlert');
  return (
    <Section id="authAlert" title="Login alerts" badge={<EnabledBadge on={!!a.enabled} />} error={hasErrorAt(props.err, 'authAlert.enabled')}>
      <Check label="Email users on a sign-in from a new location" name="authAlert.enabled" checked={!!a.enabled} onChange={(v) => setOpt(props, 'authAlert', { enabled: v })} />
      <p class="hint">The email it sends is under Mail templates.</p>
    </Section>
  );
}
