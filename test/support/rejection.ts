import { RackseedError } from '../../server/model/errors.js';

/** The RackseedError `p` rejects with (its code and details asserted by the caller); anything else fails the test. */
export async function rejection(p: Promise<unknown>): Promise<RackseedError> {
  try {
    await p;
  } catch (error) {
    if (error instanceof RackseedError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}
