import { RingmasterError } from '../lib/errors.ts';

// The text formats of the puppetserver CA directory's `serial` and `inventory.txt`, as written by
// puppetserver (upper-case `%04X`) and by the `puppetserver ca` CLI (lower-case, `002\n` at setup).
// Readers accept both; writers use puppetserver's form so that puppetserver can take the directory
// back.

export type InventoryEntry = {
  serial: bigint;
  notBefore: Date;
  notAfter: Date;
  /** OpenSSL form with the leading slash, e.g. "/CN=agent1.example.com". */
  subject: string;
};

export type InventoryParse = {
  entries: InventoryEntry[];
  /** 1-based numbers of complete lines that are neither blank nor an entry. */
  invalidLines: number[];
  /** The last line when it has no newline after it, or when it cannot be parsed. */
  tornTail: string | undefined;
  /** Length of the text up to and including the last good line: what repair keeps. */
  keepLength: number;
  /** The highest serial in an entry or at the start of any line, whole or not. */
  maxSerialSeen: bigint | undefined;
};

const hexPattern = /^[0-9a-fA-F]+$/;
const datePattern = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:UTC|GMT|Z)$/;
const serialPrefix = /^0[xX]([0-9a-fA-F]+)/;

/** puppetserver's `format-serial-number`: upper-case hex, zero-padded to 4, wider when needed. */
export function formatSerial(serial: bigint): string {
  return serial.toString(16).toUpperCase().padStart(4, '0');
}

/** Parses the contents of a `serial` file; undefined when it is not one hex number. */
export function parseSerialText(text: string): bigint | undefined {
  const trimmed = text.trim();
  return hexPattern.test(trimmed) ? BigInt(`0x${trimmed}`) : undefined;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** e.g. 2029-05-01T12:00:00UTC; milliseconds are dropped, as X.509 times have none. */
export function formatInventoryDate(date: Date): string {
  return (
    `${String(date.getUTCFullYear()).padStart(4, '0')}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}` +
    `T${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}UTC`
  );
}

export function parseInventoryDate(text: string): Date | undefined {
  const m = datePattern.exec(text);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  // Date.UTC rolls 2024-02-30 over to March; such a line is not a real inventory line.
  return date.getUTCMonth() === mo - 1 && date.getUTCDate() === d && h < 24 && mi < 60 && s < 60 ? date : undefined;
}

export function formatInventoryLine(entry: InventoryEntry): string {
  if (entry.serial < 0n) throw new RingmasterError('RM_INTERNAL', `inventory serial ${entry.serial} is negative`);
  if (!entry.subject.startsWith('/') || /[\r\n]/.test(entry.subject)) {
    throw new RingmasterError('RM_INTERNAL', `inventory subject ${JSON.stringify(entry.subject)} is not one "/CN=..." line`);
  }
  for (const date of [entry.notBefore, entry.notAfter]) {
    if (Number.isNaN(date.getTime())) throw new RingmasterError('RM_INTERNAL', 'inventory entry has an invalid date');
  }
  return `0x${formatSerial(entry.serial)} ${formatInventoryDate(entry.notBefore)} ${formatInventoryDate(entry.notAfter)} ${entry.subject}\n`;
}

/** One line without its newline; undefined when it is not an entry. */
export function parseInventoryLine(line: string): InventoryEntry | undefined {
  // The subject may itself contain spaces ("/CN=Puppet CA: host"), so only the first three
  // separators split fields.
  const first = line.indexOf(' ');
  const second = line.indexOf(' ', first + 1);
  const third = line.indexOf(' ', second + 1);
  if (first < 0 || second < 0 || third < 0) return undefined;
  const serialText = line.slice(0, first);
  const serialMatch = serialPrefix.exec(serialText);
  if (serialMatch === null || serialMatch[0].length !== serialText.length) return undefined;
  const notBefore = parseInventoryDate(line.slice(first + 1, second));
  const notAfter = parseInventoryDate(line.slice(second + 1, third));
  const subject = line.slice(third + 1).replace(/\r$/, '');
  if (notBefore === undefined || notAfter === undefined || !subject.startsWith('/') || subject.length < 2) return undefined;
  return { serial: BigInt(`0x${serialMatch[1] ?? ''}`), notBefore, notAfter, subject };
}

export function parseInventory(text: string): InventoryParse {
  const entries: InventoryEntry[] = [];
  const invalidLines: number[] = [];
  let maxSerialSeen: bigint | undefined;
  const see = (serial: bigint): void => {
    if (maxSerialSeen === undefined || serial > maxSerialSeen) maxSerialSeen = serial;
  };
  let start = 0;
  let lineNo = 0;
  let keepLength = 0;
  let tornTail: string | undefined;
  while (start < text.length) {
    lineNo += 1;
    const nl = text.indexOf('\n', start);
    const line = text.slice(start, nl < 0 ? text.length : nl);
    const end = nl < 0 ? text.length : nl + 1;
    const entry = parseInventoryLine(line);
    // A crash during an append can cut a line anywhere, even where what is left still parses,
    // so a line without its newline never counts as an entry.
    const isLast = end === text.length;
    if (entry !== undefined && nl >= 0) {
      entries.push(entry);
      see(entry.serial);
      keepLength = end;
    } else if (line.trim() === '' && nl >= 0) {
      keepLength = end;
    } else if (isLast) {
      tornTail = line;
    } else {
      invalidLines.push(lineNo);
      keepLength = end;
    }
    if (entry === undefined) {
      const prefix = serialPrefix.exec(line.trim());
      if (prefix !== null) see(BigInt(`0x${prefix[1] ?? ''}`));
    } else if (nl < 0) {
      see(entry.serial);
    }
    start = end;
  }
  return { entries, invalidLines, tornTail, keepLength, maxSerialSeen };
}
