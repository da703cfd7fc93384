# Every dependency comes from a Debian 12 package (see scripts/install-deps.sh).
find_package(Threads REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(Boost 1.81 EXACT REQUIRED COMPONENTS json)
find_package(yaml-cpp REQUIRED)
find_package(prometheus-cpp REQUIRED)
find_package(PostgreSQL REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)

# Asio and Beast are compiled once, in this library, instead of in every translation unit.
add_library(pgshift_asio STATIC ${CMAKE_SOURCE_DIR}/cmake/asio_impl.cpp)
target_compile_definitions(pgshift_asio PUBLIC BOOST_ASIO_SEPARATE_COMPILATION
  BOOST_BEAST_SEPARATE_COMPILATION BOOST_ASIO_NO_DEPRECATED)
target_link_libraries(pgshift_asio PUBLIC Boost::headers OpenSSL::SSL OpenSSL::Crypto
  Threads::Threads)
