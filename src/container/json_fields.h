#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/types.h"

namespace kasou::container {

// Reads the fields of one JSON object of an OCI document, each error naming the field by its path
// from the top ("process.user.uid"). Unlike kasou's own configuration files, an OCI document may
// carry properties this runtime does not know: runtime-spec (config.md) says they are ignored, so
// this reader never complains about fields it was not asked for. A field that is known but not
// implemented is refused by the caller through refuse().
class JsonFields {
public:
    // An error when json is not an object; path "" names the document itself.
    static ErrorOr<JsonFields> of(nlohmann::json const& json, std::string path);

    // The full path of a field of this object.
    std::string field(std::string_view key) const;
    // nullptr when the field is absent or null.
    nlohmann::json const* value(std::string_view key) const;
    bool has(std::string_view key) const { return value(key) != nullptr; }

    ErrorOr<void> string(std::string_view key, std::string& out) const;
    ErrorOr<void> required_string(std::string_view key, std::string& out) const;
    ErrorOr<void> boolean(std::string_view key, bool& out) const;
    // Integers in [minimum, maximum]; a float or an out-of-range value is an error naming the field.
    ErrorOr<void> integer(std::string_view key, std::optional<i64>& out, i64 minimum, i64 maximum) const;
    ErrorOr<void> unsigned_integer(std::string_view key, std::optional<u64>& out, u64 maximum) const;
    ErrorOr<void> strings(std::string_view key, std::vector<std::string>& out) const;
    ErrorOr<void> string_map(std::string_view key, std::map<std::string, std::string>& out) const;
    // The object under key (absent: std::nullopt).
    ErrorOr<std::optional<JsonFields>> object(std::string_view key) const;
    // The objects of the array under key, each with its path ("mounts[2]").
    ErrorOr<std::vector<JsonFields>> objects(std::string_view key) const;
    // An error for a field present in the document that this runtime does not implement.
    ErrorOr<void> refuse(std::string_view key, std::string_view why) const;

    ErrorOr<void> type_error(std::string_view key, std::string_view expected) const;

private:
    JsonFields(nlohmann::json const& json, std::string path)
        : m_json(&json)
        , m_path(std::move(path))
    {
    }

    nlohmann::json const* m_json;
    std::string m_path;
};

} // namespace kasou::container
