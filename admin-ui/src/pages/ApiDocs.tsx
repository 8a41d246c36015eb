// The "API" screen: this server's OpenAPI document (GET /api/openapi.json, as
// the signed-in superuser sees it) rendered by Scalar, which is bundled from npm
// and loaded as its own chunk only when the screen opens (no CDN: fonts off).
// "Test request" carries the superuser's token; the JSON can be downloaded.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, auth } from '../api';
import { Spinner } from '../ui';

export function ApiDocs() {
  const host = useRef<HTMLDivElement>(null);
  const [doc, setDoc] = useState<any>(null);
  const [error, setError] = useState('');

  useEffect(() => {
    let gone = false;
    let app: { destroy?: () => void } | undefined;
    (async () => {
      const document = await api('GET', '/api/openapi.json');
      const [{ createApiReference }] = await Promise.all([
        import('@scalar/api-reference'),
        import('@scalar/api-reference/style.css'),
      ]);
      if (gone || !host.current) return;
      setDoc(document);
      app = createApiReference(host.current, {
        content: document,
        servers: [{ url: location.origin }],
        // Nothing leaves this server: no web fonts, telemetry, AI agent or
        // Scalar's hosted developer tools.
        withDefaultFonts: false,
        telemetry: false,
        agent: { disabled: true },
        showDeveloperTools: 'never',
        hideClientButton: false,
        authentication: {
          preferredSecurityScheme: 'superuserToken',
          securitySchemes: { superuserToken: { token: auth.session?.token || '' } },
        },
      }) as { destroy?: () => void };
    })().catch((e) => !gone && setError(e?.message || 'The document could not be loaded.'));
    return () => {
      gone = true;
      app?.destroy?.();
    };
  }, []);

  const download = () => {
    const url = URL.createObjectURL(new Blob([JSON.stringify(doc, null, 2)], { type: 'application/json' }));
    const a = Object.assign(document.createElement('a'), { href: url, download: 'openapi.json' });
    a.click();
    URL.revokeObjectURL(url);
  };

  return (
    <section class="api-docs">
      <div class="toolbar">
        <h1>API</h1>
        <div class="spacer" />
        <button type="button" class="btn" disabled={!doc} onClick={download}>Download openapi.json</button>
      </div>
      {error && <div class="error" role="alert">{error}</div>}
      {!doc && !error && <Spinner />}
      <div ref={host} class="api-docs-reference" />
    </section>
  );
}
