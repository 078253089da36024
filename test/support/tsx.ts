/** `node --import <this>` runs TypeScript sources in a child process, whatever its working directory. */
export const TSX_IMPORT = import.meta.resolve('tsx');
