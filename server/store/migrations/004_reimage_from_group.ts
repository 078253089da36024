import type { Migration } from './types.js';

/**
 * next_group/next_role were written by no code path: a reimage into another group edits the inventory instead. The
 * one thing a pending reimage must remember is the group it moved the node out of, so a cancel can move it back.
 * A value left in next_group (a hand edit) named a group to go to, not one left: it is not carried over.
 */
export const reimageFromGroup: Migration = {
  version: 4,
  name: 'reimage_from_group',
  sql: `
    ALTER TABLE node_status RENAME COLUMN next_group TO reimage_from_group;
    ALTER TABLE node_status DROP COLUMN next_role;
    UPDATE node_status SET reimage_from_group = NULL;
  `,
};
