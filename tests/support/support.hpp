#pragma once
// Everything an integration test needs: #include "tests/support/support.hpp".
// See tests/support/README.md.
#include "cert_authority.hpp"
#include "files.hpp"
#include "metrics.hpp"
#include "net.hpp"
#include "paths.hpp"
#include "pg_cluster.hpp"
#include "pg_connection.hpp"
#include "pgshift_config.hpp"
#include "pgshift_process.hpp"
#include "process.hpp"
#include "psql.hpp"
#include "raw_socket.hpp"
#include "shared_environment.hpp"
#include "tcp_forwarder.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"
