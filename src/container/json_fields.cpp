#include "container/json_fields.h"

#include <fmt/format.h>

namespace kasou::container {

using Json = nlohmann::json;

ErrorOr<JsonFields> JsonFields::of(Json const& json, std::string path)
{
    if (!json.is_object())
        return make_error(fmt::format("{}: expected an object, got {}", path.empty() ? "config.json" : path, json.type_name()));
    return JsonFields(json, std::move(path));
}

std::string JsonFields::field(std::string_view key) const
{
    return m_path.empty() ? std::string(key) : fmt::format("{}.{}", m_path, key);
}

Json const* JsonFields::value(std::string_view key) const
{
    auto it = m_json->find(key);
    if (it == m_json->end() || it->is_null())
        return nullptr;
    return &*it;
}

ErrorOr<void> JsonFields::type_error(std::string_view key, std::string_view expected) const
{
    auto const* json = value(key);
    return make_error(fmt::format("{}: expected {}, got {}", field(key), expected, json ? json->type_name() : "nothing"));
}

ErrorOr<void> JsonFields::string(std::string_view key, std::string& out) const
{
    auto const* json = value(key);
    if (!json)
        return {};
    if (!json->is_string())
        return type_error(key, "a string");
    out = json->get<std::string>();
    return {};
}

ErrorOr<void> JsonFields::required_string(std::string_view key, std::string& out) const
{
    if (!value(key))
        return make_error(fmt::format("{}: required", field(key)));
    auto result = string(key, out);
    if (result && out.empty())
        return make_error(fmt::format("{}: must not be empty", field(key)));
    return result;
}

ErrorOr<void> JsonFields::boolean(std::string_view key, bool& out) const
{
    auto const* json = value(key);
    if (!json)
        return {};
    if (!json->is_boolean())
        return type_error(key, "true or false");
    out = json->get<bool>();
    return {};
}

ErrorOr<void> JsonFields::integer(std::string_view key, std::optional<i64>& out, i64 minimum, i64 maximum) const
{
    auto const* json = value(key);
    if (!json)
        return {};
    if (json->is_number_unsigned()) {
        u64 number = json->get<u64>();
        if (number > static_cast<u64>(maximum))
            return make_error(fmt::format("{}: {} is above the largest allowed value {}", field(key), number, maximum));
        out = static_cast<i64>(number);
    } else if (json->is_number_integer()) {
        out = json->get<i64>();
    } else {
        return type_error(key, "an integer");
    }
    if (*out < minimum || *out > maximum)
        return make_error(fmt::format("{}: {} is outside {}..{}", field(key), *out, minimum, maximum));
    return {};
}

ErrorOr<void> JsonFields::unsigned_integer(std::string_view key, std::optional<u64>& out, u64 maximum) const
{
    auto const* json = value(key);
    if (!json)
        return {};
    if (!json->is_number_unsigned() && !(json->is_number_integer() && json->get<i64>() >= 0))
        return type_error(key, "an unsigned integer");
    u64 number = json->get<u64>();
    if (number > maximum)
        return make_error(fmt::format("{}: {} is above the largest allowed value {}", field(key), number, maximum));
    out = number;
    return {};
}

ErrorOr<void> JsonFields::strings(std::string_view key, std::vector<std::string>& out) const
{
    auto const* json = value(key);
    if (!json)
        return {};
    if (!json->is_array())
        return type_error(key, "an array of strings");
    out.clear();
    for (size_t i = 0; i < json->size(); ++i) {
        if (!(*json)[i].is_string())
            return make_error(fmt::format("{}[{}]: expected a string, got {}", field(key), i, (*json)[i].type_name()));
        out.push_back((*json)[i].get<std::string>());
    }
    return {};
}

ErrorOr<void> JsonFields::string_map(std::string_view key, std::map<std::string, std::string>& out) const
{
    auto const* json = value(key);
    if (!json)
        return {};
    if (!json->is_object())
        return type_error(key, "an object of strings");
    for (auto const& [name, item] : json->items()) {
        if (!item.is_string())
            return make_error(fmt::format("{}.{}: expected a string, got {}", field(key), name, item.type_name()));
        out[name] = item.get<std::string>();
    }
    return {};
}

ErrorOr<std::optional<JsonFields>> JsonFields::object(std::string_view key) const
{
    auto const* json = value(key);
    if (!json)
        return std::optional<JsonFields>();
    if (!json->is_object())
        return tl::unexpected(type_error(key, "an object").error());
    return std::optional<JsonFields>(JsonFields(*json, field(key)));
}

ErrorOr<std::vector<JsonFields>> JsonFields::objects(std::string_view key) const
{
    std::vector<JsonFields> out;
    auto const* json = value(key);
    if (!json)
        return out;
    if (!json->is_array())
        return tl::unexpected(type_error(key, "an array of objects").error());
    for (size_t i = 0; i < json->size(); ++i) {
        auto item = of((*json)[i], fmt::format("{}[{}]", field(key), i));
        if (!item)
            return tl::unexpected(item.error());
        out.push_back(*item);
    }
    return out;
}

ErrorOr<void> JsonFields::refuse(std::string_view key, std::string_view why) const
{
    if (!value(key))
        return {};
    return make_error(ErrorKind::Unsupported, fmt::format("{}: not supported by kasou: {}", field(key), why));
}

} // namespace kasou::container
