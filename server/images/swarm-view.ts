import type { WebSeedThrottleStats } from '../net/http/webseed-throttle.js';
import type { SeederStatus } from './seeder.js';
import type { TrackerSwarm } from './tracker.js';

/** What the rest of the server reads of the image swarm: the tracker's peers, the seeder, the web-seed pacing. */
export interface SwarmView {
  tracker: () => TrackerSwarm[];
  seeder: () => SeederStatus | undefined;
  webseed?: () => WebSeedThrottleStats;
}
