// The namespace harness ships with the product (the virtual lab uses it): tests use the same code.
export { Netns, type NetnsOptions, type RunResult } from '../../server/lab/netns.js';
