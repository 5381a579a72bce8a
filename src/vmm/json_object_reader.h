#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/try.h"
#include "base/types.h"

namespace kasou::vmm {

// Reads the fields of one JSON object, each at most once, and refuses the ones not read.
// Every error names the field by its path from the top ("disks[0].queues").
class ObjectReader {
public:
    using Json = nlohmann::json;

    static ErrorOr<ObjectReader> of(Json const& json, std::string path)
    {
        if (!json.is_object())
            return make_error(fmt::format("{}: expected an object, got {}", path.empty() ? "configuration" : path, json.type_name()));
        return ObjectReader(json, std::move(path));
    }

    std::string field(std::string_view key) const { return m_path.empty() ? std::string(key) : fmt::format("{}.{}", m_path, key); }

    // nullptr when the field is absent.
    Json const* value(std::string_view key)
    {
        m_read.insert(std::string(key));
        auto it = m_json.find(key);
        return it == m_json.end() ? nullptr : &*it;
    }

    ErrorOr<void> string(std::string_view key, std::string& out)
    {
        auto const* json = value(key);
        if (!json)
            return {};
        if (!json->is_string())
            return type_error(key, "a string", *json);
        out = json->get<std::string>();
        return {};
    }

    ErrorOr<void> optional_string(std::string_view key, std::optional<std::string>& out)
    {
        auto const* json = value(key);
        if (!json || json->is_null())
            return {};
        if (!json->is_string())
            return type_error(key, "a string or null", *json);
        out = json->get<std::string>();
        return {};
    }

    ErrorOr<void> boolean(std::string_view key, bool& out)
    {
        auto const* json = value(key);
        if (!json)
            return {};
        if (!json->is_boolean())
            return type_error(key, "true or false", *json);
        out = json->get<bool>();
        return {};
    }

    template<typename T>
    ErrorOr<void> number(std::string_view key, T& out, u64 minimum, u64 maximum)
    {
        auto const* json = value(key);
        if (!json)
            return {};
        if (!json->is_number_unsigned() && !(json->is_number_integer() && json->get<i64>() >= 0))
            return type_error(key, "a whole number", *json);
        u64 number = json->get<u64>();
        if (number < minimum || number > maximum)
            return make_error(fmt::format("{}: {} is out of range ({} to {})", field(key), number, minimum, maximum));
        out = static_cast<T>(number);
        return {};
    }

    // Refuses any field that was not read.
    ErrorOr<void> finish() const
    {
        for (auto const& [key, value] : m_json.items()) {
            if (!m_read.contains(key))
                return make_error(fmt::format("{}: unknown field", field(key)));
        }
        return {};
    }

private:
    ObjectReader(Json const& json, std::string path)
        : m_json(json)
        , m_path(std::move(path))
    {
    }

    tl::unexpected<Error> type_error(std::string_view key, std::string_view expected, Json const& json) const
    {
        return make_error(fmt::format("{}: expected {}, got {}", field(key), expected, json.type_name()));
    }

    Json const& m_json;
    std::string m_path;
    std::set<std::string, std::less<>> m_read;
};

// The array at key (absent: empty), each element given to parse with its path.
template<typename T, typename Parse>
ErrorOr<void> array(ObjectReader& reader, std::string_view key, std::vector<T>& out, Parse const& parse)
{
    auto const* json = reader.value(key);
    if (!json)
        return {};
    if (!json->is_array())
        return make_error(fmt::format("{}: expected an array, got {}", reader.field(key), json->type_name()));
    out.clear();
    for (size_t i = 0; i < json->size(); ++i)
        out.push_back(TRY(parse((*json)[i], fmt::format("{}[{}]", reader.field(key), i))));
    return {};
}

} // namespace kasou::vmm
