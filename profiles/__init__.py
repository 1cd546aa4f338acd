"""The member as the ERP and operators see them, composed from every app: the summary the
member API answers with, the timeline, and the member's page in the admin. It sits above
the domain apps and reads them through their selectors; what it writes goes through the
owning app's services."""
