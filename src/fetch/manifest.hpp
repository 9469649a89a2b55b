// The `litchi fetch` manifest: JSON Lines, one line per input URL, in input
// order (documented in docs/cli.md). The server's manifest.jsonl export
// uses the same line format.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/image_format.hpp"
#include "core/reason.hpp"
#include "fetch/engine.hpp"

namespace litchi {

struct ManifestEntry {
    std::string url;
    bool done = false;
    FailureReason reason = FailureReason::none;  // failed only
    int http_status = 0;                         // 0: not sent
    std::string file;                            // relative to the output folder; done only
    std::string sha256;
    std::uint64_t bytes = 0;
    int width = 0, height = 0;
    ImageFormat format = ImageFormat::unknown;
    int attempts = 0;
};

ManifestEntry manifest_entry_from(const FetchResult& result);

// One line of JSON, no trailing newline. Optional fields are left out when unset.
std::string to_manifest_line(const ManifestEntry& entry);

// nullopt for a line that is not a manifest object (the caller says where).
std::optional<ManifestEntry> parse_manifest_line(std::string_view line);

// Reads a whole manifest; lines that do not parse are skipped and counted.
std::vector<ManifestEntry> read_manifest(const std::filesystem::path& file,
                                         std::size_t* bad_lines = nullptr);

// Writes atomically: a temporary file beside it, fsync, rename, fsync folder.
// Entries that are nullopt (not finished) are left out. Throws on I/O failure.
void write_manifest(const std::filesystem::path& file,
                    const std::vector<std::optional<ManifestEntry>>& entries);

}  // namespace litchi
