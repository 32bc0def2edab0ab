"""Staff: WeCom members as scrmbot knows them (role, region, duty), and their chat with the app."""
