// A tiny in-process SMTP server that accepts every mail and keeps it, so the
// account tests can read the links and codes the server under test sends.
//
// It speaks just enough SMTP for an ordinary client (Go's net/smtp in
// PocketBase, lettre in Ferrobase): EHLO/HELO (no STARTTLS offered, so the
// session stays plain text), AUTH PLAIN/LOGIN accepting any credentials,
// MAIL FROM, RCPT TO, DATA (dot-unstuffed, ended by "\r\n.\r\n"), RSET, NOOP,
// QUIT. Node's standard library only.

import { createServer } from 'node:net';

/** Default and maximum wait in `waitFor`, in milliseconds. */
const DEFAULT_WAIT_MS = 5_000;
const MAX_WAIT_MS = 30_000;
/** Largest message (DATA) and command line accepted, in bytes. */
const MAX_MESSAGE_BYTES = 10 * 1024 * 1024;
const MAX_LINE_BYTES = 64 * 1024;
/** A connection silent for this long is dropped. */
const IDLE_TIMEOUT_MS = 30_000;

const HOSTNAME = 'sink.localhost';

/**
 * Starts the sink on 127.0.0.1 and a free port.
 *
 * Each accepted mail is stored once per recipient as `{ to, from, raw }`
 * (`to`/`from` are the bare envelope addresses, `raw` the message as sent,
 * headers included, with CRLF line ends).
 *
 * @returns {Promise<{
 *   port: number,
 *   waitFor: (to: string, timeoutMs?: number) => Promise<{to: string, from: string, raw: string} | null>,
 *   messages: () => Array<{to: string, from: string, raw: string}>,
 *   close: () => Promise<void>,
 * }>}
 *   `waitFor` resolves with the oldest message to `to` (case-insensitive) that no
 *   earlier `waitFor` returned, waiting up to `timeoutMs` (default 5 s, at most
 *   30 s) for it to arrive, else with null. `messages()` lists everything received.
 */
export async function startSmtpSink() {
  const stored = [];
  const taken = new Set();
  const waiters = new Set();
  const sockets = new Set();

  const deliver = (message) => {
    stored.push(message);
    for (const waiter of [...waiters]) waiter.check();
  };

  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    serveSession(socket, deliver);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });

  const oldestUntaken = (to) => {
    const wanted = to.toLowerCase();
    return stored.find((m) => !taken.has(m) && m.to.toLowerCase() === wanted) ?? null;
  };

  return {
    port: server.address().port,

    waitFor(to, timeoutMs = DEFAULT_WAIT_MS) {
      const limit = Math.min(Math.max(Number(timeoutMs) || 0, 0), MAX_WAIT_MS);
      return new Promise((resolve) => {
        const waiter = {
          check() {
            const found = oldestUntaken(to);
            if (found) {
              taken.add(found);
              this.done(found);
            }
          },
          done(result) {
            clearTimeout(this.timer);
            waiters.delete(this);
            resolve(result);
          },
        };
        waiter.timer = setTimeout(() => waiter.done(null), limit);
        waiters.add(waiter);
        waiter.check();
      });
    },

    messages() {
      return stored.slice();
    },

    async close() {
      for (const waiter of [...waiters]) waiter.done(null);
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** One SMTP session on `socket`; every complete mail goes to `deliver`. */
function serveSession(socket, deliver) {
  let buffer = '';
  let mode = 'command'; // 'command' | 'data' | 'auth-plain' | 'auth-login-user' | 'auth-login-pass'
  let from = '';
  let recipients = [];
  let dataLines = [];
  let dataBytes = 0;
  let dataTooBig = false;

  socket.setEncoding('latin1'); // byte-transparent: raw keeps exactly what was sent
  socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
  socket.on('error', () => {}); // a client that hangs up mid-session is not our problem

  const reply = (text) => {
    if (!socket.destroyed) socket.write(`${text}\r\n`);
  };
  const resetEnvelope = () => {
    from = '';
    recipients = [];
  };

  const onDataLine = (line) => {
    if (line === '.') {
      mode = 'command';
      if (dataTooBig) {
        reply('552 Message too big');
      } else {
        const raw = dataLines.join('\r\n') + '\r\n';
        for (const to of recipients) deliver({ to, from, raw });
        reply('250 OK: queued');
      }
      dataLines = [];
      dataBytes = 0;
      dataTooBig = false;
      resetEnvelope();
      return;
    }
    const unstuffed = line.startsWith('.') ? line.slice(1) : line;
    dataBytes += unstuffed.length + 2;
    if (dataBytes > MAX_MESSAGE_BYTES) {
      dataTooBig = true;
      dataLines = [];
    } else if (!dataTooBig) {
      dataLines.push(unstuffed);
    }
  };

  const onCommandLine = (line) => {
    const [verb = '', ...rest] = line.split(' ');
    const arg = rest.join(' ').trim();
    switch (verb.toUpperCase()) {
      case 'EHLO':
        resetEnvelope();
        // No STARTTLS, no PIPELINING, no 8BITMIME: the plainest session possible.
        reply(`250-${HOSTNAME} Hello ${arg || 'client'}`);
        reply('250-AUTH PLAIN LOGIN');
        reply(`250-SIZE ${MAX_MESSAGE_BYTES}`);
        reply('250 HELP');
        break;
      case 'HELO':
        resetEnvelope();
        reply(`250 ${HOSTNAME}`);
        break;
      case 'AUTH': {
        const [mechanism = '', initial] = arg.split(/\s+/);
        if (mechanism.toUpperCase() === 'PLAIN') {
          if (initial) reply('235 2.7.0 Authentication successful');
          else {
            mode = 'auth-plain';
            reply('334 ');
          }
        } else if (mechanism.toUpperCase() === 'LOGIN') {
          mode = 'auth-login-pass';
          if (initial) reply('334 UGFzc3dvcmQ6'); // "Password:"
          else {
            mode = 'auth-login-user';
            reply('334 VXNlcm5hbWU6'); // "Username:"
          }
        } else {
          reply('504 5.5.4 Unrecognized authentication type');
        }
        break;
      }
      case 'MAIL': {
        const address = /^FROM:\s*<([^>]*)>/i.exec(arg);
        if (!address) {
          reply('501 5.5.4 Syntax: MAIL FROM:<address>');
          break;
        }
        resetEnvelope();
        from = address[1];
        reply('250 OK');
        break;
      }
      case 'RCPT': {
        const address = /^TO:\s*<([^>]+)>/i.exec(arg);
        if (!address) reply('501 5.5.4 Syntax: RCPT TO:<address>');
        else {
          recipients.push(address[1]);
          reply('250 OK');
        }
        break;
      }
      case 'DATA':
        if (!recipients.length) {
          reply('503 5.5.1 Need RCPT first');
          break;
        }
        mode = 'data';
        reply('354 End data with <CR><LF>.<CR><LF>');
        break;
      case 'RSET':
        resetEnvelope();
        reply('250 OK');
        break;
      case 'NOOP':
        reply('250 OK');
        break;
      case 'VRFY':
        reply('252 Cannot VRFY user');
        break;
      case 'QUIT':
        reply('221 Bye');
        socket.end();
        break;
      default:
        reply('502 5.5.2 Command not recognized');
    }
  };

  const onLine = (line) => {
    switch (mode) {
      case 'data':
        return onDataLine(line);
      case 'auth-plain':
        mode = 'command';
        return reply(line === '*' ? '501 Authentication cancelled' : '235 2.7.0 Authentication successful');
      case 'auth-login-user':
        mode = line === '*' ? 'command' : 'auth-login-pass';
        return reply(line === '*' ? '501 Authentication cancelled' : '334 UGFzc3dvcmQ6');
      case 'auth-login-pass':
        mode = 'command';
        return reply(line === '*' ? '501 Authentication cancelled' : '235 2.7.0 Authentication successful');
      default:
        return onCommandLine(line);
    }
  };

  socket.on('data', (chunk) => {
    buffer += chunk;
    let end;
    while ((end = buffer.indexOf('\n')) !== -1) {
      // SMTP lines end in CRLF; a bare LF is accepted as well.
      const line = buffer.slice(0, end).replace(/\r$/, '');
      buffer = buffer.slice(end + 1);
      onLine(line);
      if (socket.destroyed) return;
    }
    if (buffer.length > MAX_LINE_BYTES) {
      reply('500 5.5.6 Line too long');
      socket.destroy();
    }
  });

  reply(`220 ${HOSTNAME} ESMTP sink ready`);
}

// ---------------------------------------------------------------------------
// Reading what the server sent

/**
 * Decodes quoted-printable text: drops soft line breaks (`=\r\n`) and turns
 * `=XX` escapes (such as `=3D` for `=`) back into bytes, read as UTF-8.
 */
export function decodeQuotedPrintable(text) {
  const joined = text.replace(/=\r?\n/g, '');
  const bytes = [];
  for (let i = 0; i < joined.length; i++) {
    const escape = joined[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(joined.slice(i + 1, i + 3));
    if (escape) {
      bytes.push(parseInt(joined.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(joined.charCodeAt(i) & 0xff);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * The decoded text of every body part of `message` (a sink message or a raw
 * string), joined by blank lines: multipart bodies are split on their boundary
 * and each part is decoded according to its Content-Transfer-Encoding
 * (quoted-printable, base64, or as is). Headers are left out.
 */
export function messageText(message) {
  const raw = typeof message === 'string' ? message : message.raw; // latin1: one char per byte
  return partTexts(raw.replace(/\r?\n/g, '\r\n'), 0).join('\r\n\r\n');
}

function partTexts(entity, depth) {
  const split = entity.indexOf('\r\n\r\n');
  const head = split === -1 ? entity : entity.slice(0, split);
  const body = split === -1 ? '' : entity.slice(split + 4);
  const headers = head.replace(/\r\n[ \t]+/g, ' '); // unfold
  const header = (name) => new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(headers)?.[1] ?? '';

  const boundary = /boundary="?([^";\r\n]+)"?/i.exec(header('Content-Type'))?.[1];
  if (/^multipart\//i.test(header('Content-Type')) && boundary && depth < 5) {
    const delimiter = `--${boundary}`;
    const sections = body.split(delimiter).slice(1); // before the first delimiter: preamble
    const texts = [];
    for (const section of sections) {
      if (section.startsWith('--')) break; // closing delimiter
      texts.push(...partTexts(section.replace(/^[ \t]*\r\n/, ''), depth + 1));
    }
    return texts;
  }

  const encoding = header('Content-Transfer-Encoding').trim().toLowerCase();
  if (encoding === 'quoted-printable') return [decodeQuotedPrintable(body)];
  if (encoding === 'base64') return [Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8')];
  return [Buffer.from(body, 'latin1').toString('utf8')]; // 7bit/8bit: the bytes as sent
}

/**
 * The first JWT (`eyJ…` header, payload and signature, base64url, dot-separated)
 * in the decoded body of `message`, or null.
 */
export function extractToken(message) {
  const match = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/.exec(messageText(message));
  return match ? match[0] : null;
}

/**
 * The first free-standing run of exactly `length` digits in the visible text of
 * `message` (HTML tags and style blocks removed), or null: the one-time password
 * of an OTP mail.
 */
export function extractOtp(message, length = 8) {
  const visible = messageText(message)
    .replace(/<style[\s\S]*?<\/style>/gi, ' ')
    .replace(/<[^>]*>/g, ' ');
  const match = new RegExp(`(?<![\\w#&])\\d{${Number(length)}}(?!\\w)`).exec(visible);
  return match ? match[0] : null;
}
