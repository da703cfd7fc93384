// proxy/migrate/ holds sync, verify and cutover; names.hpp is header-only. This file gives the
// library an object until the first of them lands.
#include "proxy/migrate/names.hpp"
