#pragma once
// Maps one admin request to its handler: path -> endpoint, bearer token (every endpoint but
// /healthz), method (405 with Allow), then the handler; counts every answer in
// pgshift_admin_requests_total{endpoint, code}. Never throws.
#include <boost/asio/awaitable.hpp>
#include <string>

#include "proxy/admin/http.hpp"

namespace pgshift::proxy {

AdminResponse handle_admin_request(Runtime& runtime, const AdminRequest& request,
                                   const std::string& peer);
// The same for the admin server: endpoints that change the fleet's state are answered
// asynchronously (the control thread runs the change; this executor is never blocked).
// `request` and `peer` must live until it completes.
boost::asio::awaitable<AdminResponse> handle_admin_request_async(Runtime& runtime,
                                                                 const AdminRequest& request,
                                                                 const std::string& peer);

}  // namespace pgshift::proxy
