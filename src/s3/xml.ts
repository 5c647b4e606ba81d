import { XMLParser, XMLValidator } from "fast-xml-parser";
import { S3Error } from "./errors.js";

export const S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/";

/** An element: name plus text, children, or nothing (undefined children are left out). */
export type XmlNode = [name: string, content: string | number | boolean | XmlNode[] | undefined];

/** XML 1.0 forbids most control characters even escaped; keys containing them are sent URL-encoded when asked. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!);
}

function render([name, content]: XmlNode): string {
  if (content === undefined) return "";
  if (Array.isArray(content)) return `<${name}>${content.map(render).join("")}</${name}>`;
  return `<${name}>${escapeXml(String(content))}</${name}>`;
}

/** A response document: small, so an escaping template is enough (and fast). */
export function xmlDocument(root: string, children: XmlNode[], namespace: string | undefined = S3_NAMESPACE): string {
  const ns = namespace ? ` xmlns="${namespace}"` : "";
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root}${ns}>${children.map(render).join("")}</${root}>`;
}

/** The largest request document we parse: a 1000-key Delete or a 10,000-part Complete fits easily. */
export const MAX_XML_BYTES = 2 * 1024 * 1024;

const parser = new XMLParser({
  ignoreAttributes: true,
  // Character references (&amp; &#x41; …) are decoded; entity *definitions* never get here (see parseXml).
  processEntities: true,
  htmlEntities: true,
  ignoreDeclaration: true,
  parseTagValue: false,
  // Keys may begin or end with spaces; callers trim the fields where that is safe.
  trimValues: false,
  removeNSPrefix: true,
  // These elements repeat; as arrays even when there is one.
  isArray: (name) => name === "Part" || name === "Object",
});

/**
 * Parses a request document and returns its root element's content. DOCTYPE declarations (and with
 * them every entity definition) are refused outright: no entity expansion, no external entities.
 */
export function parseXml(body: Buffer, root: string): Record<string, unknown> {
  const text = body.toString("utf8");
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw new S3Error("MalformedXML", "DOCTYPE and ENTITY declarations are not accepted");
  const valid = XMLValidator.validate(text);
  if (valid !== true) throw new S3Error("MalformedXML", `the XML is not well-formed: ${valid.err.msg} (line ${valid.err.line})`);
  const doc = parser.parse(text) as Record<string, unknown>;
  const content = doc[root];
  if (content === undefined) throw new S3Error("MalformedXML", `the document's root element must be <${root}>`);
  return typeof content === "object" && content !== null ? (content as Record<string, unknown>) : {};
}

/** Text of a child element, or undefined. */
export function textOf(node: unknown, name: string): string | undefined {
  if (typeof node !== "object" || node === null) return undefined;
  const value = (node as Record<string, unknown>)[name];
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return undefined;
}

/** Child elements that may repeat, always as an array. */
export function listOf(node: Record<string, unknown>, name: string): unknown[] {
  const value = node[name];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
