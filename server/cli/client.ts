import { RackseedError, type ErrorCode } from '../model/errors.js';

/** Thin client of the admin API; every CLI verb except `serve` goes through it. */
/**
 * Why fetch failed, for the operator: the socket's error code (ECONNREFUSED), else the inner reason (fetch refuses
 * some ports, 10080 or 6000, before connecting, with no code), else fetch's own message.
 */
function unreachable(baseUrl: string, cause: unknown): RackseedError {
  const inner = (cause as { cause?: { code?: string; message?: string } }).cause;
  const why = inner?.code ?? inner?.message ?? (cause as Error).message;
  return new RackseedError('INTERNAL', `cannot reach rackseed at ${baseUrl} (${why}); is \`rackseed serve\` running?`, { unreachable: baseUrl }, { cause });
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string | undefined,
  ) {}

  async get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  async post<T>(path: string, body: unknown, contentType = 'application/json'): Promise<T> {
    return this.request<T>('POST', path, contentType === 'application/json' ? JSON.stringify(body) : String(body), contentType);
  }

  /**
   * POSTs and reads an NDJSON answer line by line as it arrives: long fleet operations stream one line per node
   * so the CLI can show live progress. Resolves with the last line (the summary).
   */
  async postStream<T>(path: string, body: unknown, onLine: (line: unknown) => void, timeoutMs = 6 * 3600_000): Promise<T> {
    if (!this.token) {
      throw new RackseedError('UNAUTHORIZED', 'no admin token: pass --token, set RACKSEED_TOKEN, or run where the server\'s data directory is readable');
    }
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}/api/v1${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.token}`, accept: 'application/x-ndjson', 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (cause) {
      throw unreachable(this.baseUrl, cause);
    }
    if (!res.ok || !res.body) {
      const text = await res.text();
      let err: { code?: ErrorCode; message?: string } | undefined;
      try {
        err = (JSON.parse(text) as { error?: { code?: ErrorCode; message?: string } }).error;
      } catch {
        err = undefined;
      }
      throw new RackseedError(err?.code ?? 'INTERNAL', err?.message ?? `POST ${path} failed with HTTP ${res.status}`);
    }
    const decoder = new TextDecoder();
    let buffered = '';
    let last: unknown;
    const take = (line: string) => {
      if (!line.trim()) return;
      const parsed = JSON.parse(line) as unknown;
      const error = (parsed as { error?: { code?: ErrorCode; message?: string } }).error;
      if (error) throw new RackseedError(error.code ?? 'INTERNAL', error.message ?? 'the server reported an error');
      last = parsed;
      onLine(parsed);
    };
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        take(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    }
    take(buffered + decoder.decode());
    if (last === undefined) throw new RackseedError('INTERNAL', `POST ${path}: the server closed the stream without a result`);
    return last as T;
  }

  private async request<T>(method: string, path: string, body?: string, contentType?: string): Promise<T> {
    if (!this.token) {
      throw new RackseedError('UNAUTHORIZED', 'no admin token: pass --token, set RACKSEED_TOKEN, or run where the server\'s data directory is readable');
    }
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept: 'application/json' };
    if (contentType) headers['content-type'] = contentType;
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}/api/v1${path}`, { method, headers, ...(body !== undefined ? { body } : {}), signal: AbortSignal.timeout(30_000) });
    } catch (cause) {
      throw unreachable(this.baseUrl, cause);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw new RackseedError('INTERNAL', `${method} ${path}: the server answered ${res.status} with a body that is not JSON`);
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: ErrorCode; message?: string } }).error;
      throw new RackseedError(err?.code ?? 'INTERNAL', err?.message ?? `${method} ${path} failed with HTTP ${res.status}`);
    }
    return json as T;
  }
}
