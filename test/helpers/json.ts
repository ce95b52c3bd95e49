/** JSON text with every character outside ASCII as a \u escape: how Palisade's log lines and spans write it (independent of the code under test). */
export const asciiEscaped = (json: string): string => json.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
