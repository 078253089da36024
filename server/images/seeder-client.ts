import WebTorrent from 'webtorrent';

/**
 * The seeder's webtorrent client, listening for peers on `port` (0: any free port). Local-only: no DHT, LSD, PEX,
 * uTP, UPnP/NAT-PMP, WebRTC or web seeds (the web seed is this very server). `tracker.announce` is left out on
 * purpose: webtorrent adds it only to public torrents, ours are private.
 */
export function seederClient(port: number): WebTorrent {
  return new WebTorrent({
    dht: false,
    lsd: false,
    utPex: false,
    utp: false,
    natUpnp: false,
    natPmp: false,
    webSeeds: false,
    tracker: {},
    torrentPort: port,
    maxConns: 200,
  });
}
