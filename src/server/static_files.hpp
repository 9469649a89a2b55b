// Serves the built web app (--web DIR) with single-page-app fallback: a path
// that names no file and has no extension gets index.html, so client-side
// routes like /jobs/42 survive a reload. Paths are decoded by Boost.URL and
// checked segment by segment, so nothing outside DIR can be reached. When
// DIR has no index.html, a small built-in page says the UI is not built.
#pragma once

#include <filesystem>
#include <string_view>

#include "server/http_types.hpp"

namespace litchi::server {

class StaticFiles {
  public:
    explicit StaticFiles(std::filesystem::path web_dir);

    // GET and HEAD (the router checks the method; for HEAD the session sends only the header).
    Reply serve(const Request& req) const;

  private:
    Reply serve_file(const Request& req, const std::filesystem::path& file, bool immutable) const;
    Reply serve_placeholder(const Request& req) const;

    std::filesystem::path root_;
};

std::string_view content_type_for(const std::filesystem::path& file);

}  // namespace litchi::server
