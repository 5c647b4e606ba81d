import { XMLParser, XMLValidator } from "fast-xml-parser";
import { S3Error } from "./errors.js";

export const S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/";

/** An element: name plus text, children, or nothing (undefined children are left out). */
export type XmlNode = [name: string, content: string | number | boolean | XmlNode[] | undefined];

/** XML 1.0 forbids most control characters even escaped; keys containing them are sent URL-encoded when asked. */
export function escapeXml(text: string): string {
  // A raw CR would come back as LF (XML end-of-line handling); as a character reference it survives.
  return text.replace(/[&<>"'\r]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;", "\r": "&#13;" })[c]!);
}

function render([name, content]: XmlNode): string {
  if (content === undefined) return "";
  if (Array.isArray(content)) return `<${name}>${content.map(render).join("")}</${name}>`;
  return `<${name}>${escapeXml(String(content))}</${name}>`;
}

/** A response document: small, so an escaping template is enough (and fast). */
export function xmlDocument(root: string, children: XmlNode[], namespace: string | null = S3_NAMESPACE): string {
  const ns = namespace ? ` xmlns="${namespace}"` : "";
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root}${ns}>${children.map(render).join("")}</${root}>`;
}

/** The largest request document we parse: a 1000-key Delete or a 10,000-part Complete fits easily. */
export const MAX_XML_BYTES = 2 * 1024 * 1024;

/** S3's request documents nest four levels at most (Delete > Object > Key); anything near this is hostile. */
export const MAX_XML_DEPTH = 64;

/**
 * What is wrong with a document's markup before the parser sees it, in one forward scan (every
 * search starts where the last one ended, so it is linear): elements nested deeper than `limit` (the
 * validator and the parser recurse per level), or a processing instruction other than the leading
 * XML declaration (the parser turns `<?x?>` into a child named "?x", which would silently change what
 * an element like <Quiet> or <VersionId> says). Comments and CDATA sections are skipped, and so are
 * quoted attribute values: a '>' or "/>" inside one must not hide a start tag.
 */
export function markupProblem(text: string, limit: number): string | undefined {
  const declarationAt = text.startsWith("\uFEFF") ? 1 : 0;
  const after = (end: string, from: number) => {
    const at = text.indexOf(end, from);
    return at < 0 ? text.length : at + end.length;
  };
  let depth = 0;
  let i = text.indexOf("<");
  while (i >= 0) {
    let next: number;
    if (text.startsWith("<!--", i)) next = after("-->", i + 4);
    else if (text.startsWith("<![CDATA[", i)) next = after("]]>", i + 9);
    else if (text.startsWith("<?", i)) {
      if (i !== declarationAt || !/^<\?xml[\s?]/.test(text.slice(i, i + 6))) return "a processing instruction (<?...?>); S3 request documents have none";
      next = after("?>", i + 2);
    } else if (text.startsWith("<!", i)) next = after(">", i + 2);
    else {
      tagBody.lastIndex = i + 1;
      tagBody.test(text);
      const end = tagBody.lastIndex;
      if (text[i + 1] === "/") depth--;
      else if (text[end - 1] !== "/" && ++depth > limit) return `elements nested deeper than ${limit} levels`;
      next = end + 1;
    }
    i = text.indexOf("<", next);
  }
  return undefined;
}

/** A tag's name and attributes up to its '>': quoted values whole (each alternative starts with a different character, so no backtracking). */
const tagBody = /(?:[^"'>]|"[^"]*"|'[^']*')*/y;

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
  const problem = markupProblem(text, MAX_XML_DEPTH);
  if (problem) throw new S3Error("MalformedXML", `the XML is not accepted: it contains ${problem}`);
  const reference = badReference(text);
  if (reference) throw new S3Error("MalformedXML", `the XML is not well-formed: it contains ${reference}`);
  let doc: Record<string, unknown>;
  try {
    const valid = XMLValidator.validate(text);
    if (valid !== true) throw new S3Error("MalformedXML", `the XML is not well-formed: ${valid.err.msg} (line ${valid.err.line})`);
    doc = parser.parse(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof S3Error) throw err;
    // The library has limits of its own (it threw "Maximum nested tags exceeded"): what it refuses is the client's document.
    throw new S3Error("MalformedXML", `the XML is not accepted: ${err instanceof Error ? err.message : String(err)}`);
  }
  // The validator misses a second, self-closing root element.
  const roots = Object.keys(doc).filter((name) => name !== "?xml" && name !== "#text");
  if (roots.length > 1 || Array.isArray(doc[root])) throw new S3Error("MalformedXML", "the XML is not well-formed: it has more than one root element");
  const content = doc[root];
  if (content === undefined) throw new S3Error("MalformedXML", `the document's root element must be <${root}>`);
  return typeof content === "object" && content !== null ? (content as Record<string, unknown>) : {};
}

/** XML has five named entities and character references to allowed characters; anything else is not well-formed. */
function badReference(text: string): string | undefined {
  for (const match of text.matchAll(/&([^;&<>\s]{0,12});?/g)) {
    const name = match[1]!;
    if (!match[0].endsWith(";")) return "an unterminated reference (a bare '&')";
    if (["amp", "lt", "gt", "quot", "apos"].includes(name)) continue;
    const code = /^#x([0-9a-fA-F]{1,6})$/.exec(name) ? parseInt(name.slice(2), 16) : /^#([0-9]{1,7})$/.exec(name) ? Number(name.slice(1)) : undefined;
    if (code === undefined) return `an undefined entity &${name};`;
    const allowed = code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff);
    if (!allowed) return `a reference to a character XML does not allow (&${name};)`;
  }
  return undefined;
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
