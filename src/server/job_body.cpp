// See job_body.hpp.
#include "server/job_body.hpp"

#include <boost/json/parse.hpp>

#include "jobs/url_list.hpp"

namespace litchi::server {

namespace json = boost::json;

std::optional<JobBodyError> read_job_body(std::string_view media_type, std::string_view body,
                                          std::string_view query_name, const JobBodyLimits& limits,
                                          JobBody& out) {
    auto too_many = [&] {
        return JobBodyError{ApiError::too_many_urls,
                            "a job may have at most " + std::to_string(limits.max_urls) + " URLs"};
    };
    auto not_strings = [] {
        return JobBodyError{ApiError::invalid_body, "\"urls\" must be an array of strings"};
    };
    out.urls.clear();
    out.name.clear();
    out.duplicates = 0;
    if (media_type == "application/json") {
        json::error_code ec;
        json::parse_options options;
        options.max_depth = kMaxJobJsonDepth;
        out.json = json::parse(body, ec, {}, options);
        if (ec) return JobBodyError{ApiError::malformed_json, "the body is not valid JSON"};
        auto* object = out.json.if_object();
        if (!object) return JobBodyError{ApiError::invalid_body, "expected a JSON object"};
        auto* list = object->if_contains("urls");
        if (!list || !list->is_array()) return not_strings();
        if (list->as_array().size() > limits.max_urls) return too_many();
        std::vector<std::string_view> entries;
        entries.reserve(list->as_array().size());
        for (const auto& url : list->as_array()) {
            if (!url.is_string()) return not_strings();
            entries.emplace_back(url.as_string().data(), url.as_string().size());
        }
        // The list rule (jobs/url_list.hpp): blank, comment and duplicate entries go.
        auto kept = read_url_entries(entries);
        out.urls = std::move(kept.lines);
        out.duplicates = kept.duplicates;
        if (auto* name = object->if_contains("name"); name && !name->is_null()) {
            if (!name->is_string())
                return JobBodyError{ApiError::invalid_body, "\"name\" must be a string"};
            out.name = std::string(name->as_string());
        }
    } else if (media_type == "text/plain") {
        auto kept = read_url_list(body);
        out.urls = std::move(kept.lines);
        out.duplicates = kept.duplicates;
        if (out.urls.size() > limits.max_urls) return too_many();
        out.name = std::string(query_name);
    } else {
        return JobBodyError{
            ApiError::unsupported_media_type,
            "send application/json {\"urls\": [...]} or text/plain, one URL a line"};
    }
    if (out.urls.empty()) return JobBodyError{ApiError::no_urls, "the job has no URLs"};
    if (out.name.size() > limits.max_name_bytes) {
        return JobBodyError{
            ApiError::invalid_body,
            "the name is longer than " + std::to_string(limits.max_name_bytes) + " bytes"};
    }
    return std::nullopt;
}

}  // namespace litchi::server
