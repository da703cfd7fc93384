#pragma once
// Human output of `pgshift ctl`: tables and detail views built from the admin API's JSON.
// Tolerant of missing members (an older or newer server): they print as "-".
#include <boost/json/value.hpp>
#include <iosfwd>
#include <string>
#include <vector>

namespace pgshift::proxy {

// Columns padded to their widest cell, two spaces apart.
void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows);

void print_routes(std::ostream& out, const boost::json::value& body);  // GET /v1/routes
void print_route(std::ostream& out, const boost::json::value& route);  // one route object
void print_health(std::ostream& out, const boost::json::value& readyz,
                  const boost::json::value& routes);
// GET /v1/routes as the fleet sees it: route, phase, read %, epoch, members at epoch / live.
void print_status(std::ostream& out, const boost::json::value& body);
// GET /v1/members: the control plane's state, then one line per member.
void print_members(std::ostream& out, const boost::json::value& body);
void print_pause(std::ostream& out, const boost::json::value& status);
// GET /v1/pools as pool::format_pools_text() draws it ("no server pools yet" when empty).
void print_pools(std::ostream& out, const boost::json::value& body);

// "12.50" for 12.5; "-" when not a number.
std::string format_percent(const boost::json::value* v);
// A member as display text: strings unquoted, numbers as written, null/missing "-".
std::string text_of(const boost::json::value* v);

}  // namespace pgshift::proxy
