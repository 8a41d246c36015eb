// Token lifetimes per kind, each with PocketBase's "invalidate all
// previously issued tokens" switch: it sends a fresh random `secret` for
// that kind, so every token signed with the old one stops verifying. The
// server never returns the secrets; one is only sent while the box is ticked.
import { Check } from '../../ui';
import { NumberRow, Section, SectionProps, errAt, hasErrorAt, opt, randomSecret } from './common';

export const TOKENS: [string, string][] = [
  ['authToken', 'Auth token'],
  ['verificationToken', 'Email verification token'],
  ['passwordResetToken', 'Password reset token'],
  ['emailChangeToken', 'Email change token'],
  ['fileToken', 'Protected file access token'],
];

export function TokensSection(props: SectionProps) {
  const { draft, err } = props;
  const anyErr = TOKENS.some(([k]) => hasErrorAt(err, k));
  return (
    <Section id="tokens" title="Token options" error={anyErr}>
      {TOKENS.map(([k, label]) => {
        const t = opt(draft, k);
        const set = (patch: any) => props.set({ [k]: { ...t, ...patch } });
        return (
          <div class="token-row" data-token={k}>
            <NumberRow label={`${label} duration (seconds)`} name={`${k}.duration`} value={t.duration} error={errAt(err, `${k}.duration`)} min={1} onChange={(v) => set({ duration: v })} />
            <Check label="Invalidate all previously issued tokens" name={`${k}.invalidate`} checked={typeof t.secret === 'string' && t.secret !== ''}
              onChange={(on) => {
                if (on) return set({ secret: randomSecret() });
                const { secret: _old, ...rest } = t;
                void _old;
                props.set({ [k]: rest });
              }} />
            {errAt(err, `${k}.secret`) && <div class="field-error" role="alert">{errAt(err, `${k}.secret`)}</div>}
          </div>
        );
      })}
    </Section>
  );
}
