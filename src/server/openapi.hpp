// The OpenAPI 3.1 document of the HTTP API, docs/openapi.json, compiled into
// the binary (CMakeLists.txt embeds the file as it is) and served by
// GET /api/openapi.json. The file is the one source: it is written by hand,
// reviewed like code, and tested against the router's table both ways
// (tests/integration/test_openapi.py).
#pragma once

#include <string_view>

namespace litchi::server {

// The document's text, byte for byte the file's.
std::string_view openapi_document();

}  // namespace litchi::server
