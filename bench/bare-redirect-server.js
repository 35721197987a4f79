// Baseline for the redirect benchmark: a bare node:http server answering every request with a constant 302.
'use strict';
const http = require('node:http');
const port = Number(process.argv[2]);
http.createServer((req, res) => {
  res.writeHead(302, { Location: 'http://127.0.0.1:1/image-factory/assets/constant?X-Amz-Signature=0', 'Content-Length': '0' });
  res.end();
}).listen(port, '127.0.0.1');
