import { RackseedError, type ErrorCode } from '../model/errors.js';

/** Thin client of the admin API; every CLI verb except `serve` goes through it. */
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
      const why = (cause as { cause?: { code?: string } }).cause?.code ?? (cause as Error).message;
      throw new RackseedError('INTERNAL', `cannot reach rackseed at ${this.baseUrl} (${why}); is \`rackseed serve\` running?`, {}, { cause });
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
