"""Sign in with the office directory (LDAP, Active Directory), and follow it: accounts,
groups, rooms and deprovisioning. Settings in :mod:`.settings`, the LDAP questions in
:mod:`.client` (the only module that imports ldap3), login in :mod:`.login`, the periodic
sync in :mod:`.sync`."""
