/** Kubernetes resource.Quantity syntax (what LVP passes to resource.MustParse, which panics otherwise). */
const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?$/;

export function isQuantity(text: string): boolean {
  return QUANTITY.test(text);
}
