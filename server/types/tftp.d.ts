// Minimal ambient declaration for tftp 0.1.2 (no published types): only the public surface that
// server/net/tftp.ts uses. The private members it reaches to contain the package's bugs are typed there.
declare module 'tftp' {
  import type { EventEmitter } from 'node:events';
  import type { Readable, Writable } from 'node:stream';

  export interface ServerOptions {
    host?: string;
    port?: number;
    root?: string;
    denyGET?: boolean;
    denyPUT?: boolean;
    blockSize?: number;
    windowSize?: number;
    retries?: number;
    /** Milliseconds. */
    timeout?: number;
  }

  export interface TransferStats {
    blockSize: number;
    windowSize: number;
    size: number | null;
    userExtensions: Record<string, string>;
    retries: number;
    timeout: number;
    localAddress: string;
    localPort: number;
    remoteAddress: string;
    remotePort: number;
  }

  /** The client's side of a transfer (for a GET: events, abort, the requested name). */
  export interface IncomingRequest extends Readable {
    method: 'GET' | 'PUT';
    file: string;
    stats: TransferStats;
    abort(message?: string | Error): void;
    close(): void;
  }

  export interface OutgoingResponse extends Writable {
    setSize(size: number): void;
    setUserExtensions(ext: Record<string, string>): void;
  }

  export interface Server extends EventEmitter {
    root: string;
    host: string;
    port: number;
    listen(): void;
    close(): void;
  }

  export function createServer(
    options: ServerOptions,
    listener: (req: IncomingRequest, res: OutgoingResponse) => void,
  ): Server;

  export const ENOENT: string;
  export const EACCESS: string;
  export const EBADOP: string;
  export const EIO: string;
  export const EABORT: string;

  const tftp: {
    createServer: typeof createServer;
    ENOENT: string;
    EACCESS: string;
    EBADOP: string;
    EIO: string;
    EABORT: string;
  };
  export default tftp;
}
