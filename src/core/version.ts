/** Berth's version, shown by `berth --version` and the API's ping. */
export const VERSION = '0.1.0';
