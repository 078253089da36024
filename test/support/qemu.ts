// The QEMU launcher ships with the product (the virtual lab uses it): tests use the same code.
export { startVm, type SmbiosSystem, type StartVmOptions, type Vm, type VmExit } from '../../server/lab/qemu.js';
