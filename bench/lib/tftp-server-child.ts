/**
 * rackseed's TFTP adapter in its own process for bench/tftp.ts, so the 200 client spawns of the bench driver
 * do not compete with the server's event loop (tftpd-hpa gets its own processes too).
 * Prints one JSON line {"port":N} when listening; on SIGTERM prints {"stats":...} and exits.
 * Every bench client comes from 127.0.0.1: the per-client cap (tftp.max_transfers_per_client, 16 by default, there
 * against one host flooding a real server) would turn most of them away as busy, which tftpd-hpa does not. The cap
 * is raised to the total cap here, so both servers do the same work.
 */
import { startTftpServer } from '../../server/net/tftp.js';

const root = process.argv[2];
if (!root) {
  process.stderr.write('usage: tftp-server-child.ts ROOT\n');
  process.exit(2);
}
const handle = await startTftpServer({ host: '127.0.0.1', port: 0, root, maxTransfersPerClient: 512 });
process.stdout.write(`${JSON.stringify({ port: handle.address().port })}\n`);
process.once('SIGTERM', () => {
  process.stdout.write(`${JSON.stringify({ stats: handle.stats() })}\n`);
  void handle.close().finally(() => process.exit(0));
});
// The bench driver going away must not leave a server behind.
process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'));
process.stdin.resume();
