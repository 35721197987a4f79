"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.OPENAPI_DOCUMENT = void 0;
var document_1 = require("./document");
Object.defineProperty(exports, "OPENAPI_DOCUMENT", { enumerable: true, get: function () { return document_1.OPENAPI_DOCUMENT; } });
//# sourceMappingURL=index.js.map