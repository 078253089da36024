import http from 'node:http';
import https from 'node:https';
import { BmcError, type BmcCredential } from './types.js';

export interface RedfishResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

/** Longest BMC answer we read: a ComputerSystem is a few KiB; anything huge is not a Redfish service. */
const MAX_BODY = 4 * 1024 * 1024;

/**
 * One Redfish request: JSON in and out, HTTP basic auth, aborted by `signal`. node:https rather than fetch, because
 * accepting a BMC's self-signed certificate (credential `insecure: true`) needs a per-request TLS option that
 * Node's built-in fetch does not take. Certificates are verified unless the credential says otherwise.
 * Paths come from the BMC (member @odata.id, action targets, task monitors), and one like `//host/x` or
 * `https://host/x` resolves to another host: such a request is refused, since it would carry the BMC's credentials.
 */
export function redfishRequest(
  baseUrl: string,
  credential: BmcCredential,
  method: 'GET' | 'POST' | 'PATCH',
  path: string,
  signal: AbortSignal,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<RedfishResponse> {
  const url = new URL(path, baseUrl);
  const bmcOrigin = new URL(baseUrl).origin;
  if (url.origin !== bmcOrigin) return Promise.reject(new BmcError(`${method} ${path}: the BMC points at ${url.origin}, not at itself (${bmcOrigin}); not followed`));
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const auth = Buffer.from(`${credential.username}:${credential.password}`).toString('base64');
  const options: https.RequestOptions = {
    method,
    signal,
    headers: {
      accept: 'application/json',
      authorization: `Basic ${auth}`,
      'odata-version': '4.0',
      ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {}),
      ...headers,
    },
    // One connection per request: a BMC's web server is small, and keep-alive sockets would outlive the batch.
    agent: false,
    ...(url.protocol === 'https:' ? { rejectUnauthorized: credential.insecure !== true } : {}),
  };
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.request(url, options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) req.destroy(new BmcError(`${method} ${url.pathname}: answer larger than ${MAX_BODY} bytes`));
        else chunks.push(c);
      });
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = undefined;
        if (text.trim()) {
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = text;
          }
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
      });
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (signal.aborted) reject(new BmcError(`${method} ${url.pathname}: no answer in time`, { cause: e }));
      else reject(e instanceof BmcError ? e : new BmcError(`${method} ${url.pathname}: ${e.code ?? e.message}${e.code && e.message && !e.message.includes(e.code) ? ` (${e.message})` : ''}`, { cause: e }));
    });
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** The message of a Redfish error body ({ error: { message, @Message.ExtendedInfo: [...] } }), if there is one. */
export function redfishErrorMessage(body: unknown): string | undefined {
  const err = (body as { error?: { message?: unknown; '@Message.ExtendedInfo'?: Array<{ Message?: unknown }> } } | undefined)?.error;
  const extended = err?.['@Message.ExtendedInfo']?.map((i) => i.Message).filter((m): m is string => typeof m === 'string');
  if (extended && extended.length > 0) return extended.join('; ');
  return typeof err?.message === 'string' ? err.message : undefined;
}
