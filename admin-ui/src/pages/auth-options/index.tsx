// The "Auth options" tab of an auth collection, as PocketBase's dashboard
// lays it out: password sign-in, OAuth2, OTP, MFA, login alerts, the mail
// templates and the token options. Every section edits the collection
// draft; the editor saves it all with one PATCH /api/collections/{id}, and
// the server's field errors (`oauth2.providers.0.clientId`, `otp.length`,
// `mfa.rule`, …) are shown next to their inputs.
// `_superusers` sign in with a password only and have no OAuth2 (the server
// forces both), so those controls are hidden or locked there.
import { OAuth2Section } from './OAuth2Section';
import { AuthAlertSection, MfaSection, OtpSection, PasswordSection } from './OtpMfa';
import { MailTemplatesSection } from './MailTemplates';
import { TOKENS, TokensSection } from './Tokens';
import { SectionProps } from './common';

/** Top-level keys of the collection that this tab edits (for the tab's error dot). */
export const AUTH_OPTION_KEYS = [
  'passwordAuth', 'oauth2', 'otp', 'mfa', 'authAlert',
  'verificationTemplate', 'resetPasswordTemplate', 'confirmEmailChangeTemplate',
  ...TOKENS.map(([k]) => k),
];

const SUPERUSERS_ID = 'pbc_3142635823';

export function AuthOptions(props: SectionProps & { dirty: boolean }) {
  const superusers = props.draft.id === SUPERUSERS_ID || props.draft.name === '_superusers';
  return (
    <div role="tabpanel" class="auth-options">
      <PasswordSection {...props} superusers={superusers} />
      {!superusers && <OAuth2Section {...props} />}
      <OtpSection {...props} superusers={superusers} />
      <MfaSection {...props} />
      <AuthAlertSection {...props} />
      <MailTemplatesSection {...props} />
      <TokensSection {...props} />
    </div>
  );
}

/** The auth options as sent: a provider's empty client secret is left out, so the server keeps the stored one. */
export function outgoingAuthOptions(c: any): any {
  const providers = c?.oauth2?.providers;
  if (!Array.isArray(providers)) return c;
  return {
    ...c,
    oauth2: {
      ...c.oauth2,
      providers: providers.map((p: any) => {
        if (p && typeof p === 'object' && !p.clientSecret) {
          const { clientSecret: _unset, ...rest } = p;
          void _unset;
          return rest;
        }
        return p;
      }),
    },
  };
}
