"""Notifications about guarantees (保函通知): the kernel's notifications, rendered per recipient."""

from core.notifications import admins, members, notify

__all__ = ["admins", "members", "notify"]
