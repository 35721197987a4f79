/**
 * @factory/gocompat: the bytes Go writes where the anchor (a Go program) exposes them — `strconv.Quote`,
 * `encoding/json` escaping and `compress/gzip` framing — each implemented once, with one behaviour.
 */
export { goQuote } from './quote';
export { goJsonMarshal, goJsonEncode, goJsonString } from './json';
export { GO_GZIP_OS, GZIP_OS_UNIX, gzipHeader, gzipTrailer, goGzip } from './gzip';
