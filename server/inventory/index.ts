/** The inventory: desired state, declared in human-edited YAML kept in git. */
export { compressHostlist, expandHostlist, isHostlistRange, MAX_HOSTLIST_HOSTS } from './hostlist.js';
export { addToIpv4, formatIpv4, isIpv4, parseIpv4 } from '../model/ipv4.js';
export { parseCsv, type CsvRecord, type CsvTable } from './csv.js';
export { NODE_CSV_COLUMNS, parseNodeCsv, type NodeCsvRow } from './node-csv.js';
export { describeEntry, type CsvReader, type LocatedSpec } from './entries.js';
export { csvPathFor, noCsvReader, parseInventory, parseInventoryDetailed, type ParsedInventory } from './parse.js';
export { deepMerge, findNodeByMac, matchesSelector, resolveNode, resolveTargets, selectGroup } from './select.js';
export { csvReaderFor, loadInventory } from './load.js';
export { addNodeToText, importCsvToText, moveNodesToGroupInText, removeNodesFromText, type GroupMove, type NewNodeEntry, type NodeRemoval } from './edit.js';
