// Fuzz target: the manifest reader (fetch/manifest.hpp), which reads back a
// manifest.jsonl that `litchi fetch` wrote, or that someone edited, to resume.
//
// Input: one manifest line. Besides "no crash, no sanitizer report" it checks
// that a line the reader accepts writes back as a line that reads the same,
// and that a written line reads back as written (the format round-trips).
#include "fetch/manifest.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

using namespace litchi;

namespace {

void require(bool ok, const char* what, std::string_view line) {
    if (ok) return;
    std::fprintf(stderr, "manifest: %s for line [%.*s]\n", what, int(line.size()), line.data());
    std::abort();
}

bool same(const ManifestEntry& a, const ManifestEntry& b) {
    return a.url == b.url && a.done == b.done && a.reason == b.reason &&
           a.http_status == b.http_status && a.file == b.file && a.sha256 == b.sha256 &&
           a.bytes == b.bytes && a.width == b.width && a.height == b.height &&
           a.format == b.format && a.attempts == b.attempts;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view line(reinterpret_cast<const char*>(data), size);
    auto entry = parse_manifest_line(line);
    if (!entry) return 0;
    const std::string written = to_manifest_line(*entry);
    require(written.find('\n') == std::string::npos, "a written line holds a newline", line);
    auto again = parse_manifest_line(written);
    require(again.has_value(), "a written line does not read back", line);
    require(same(*entry, *again), "a written line reads back different", line);
    require(to_manifest_line(*again) == written, "writing is not stable", line);
    return 0;
}
