//! The OAuth2 providers PocketBase 0.40 ships, as data: endpoints, scopes,
//! PKCE, how the user JSON maps onto id/name/username/email/avatar and —
//! the part that decides who may take over an account by email — what
//! proves the email verified. An email is trusted only where the provider
//! documents a verified flag (or a verified-only field); where PocketBase
//! trusts an address without one (Microsoft `mail`, Facebook, Box, Linear,
//! Notion, Yandex, VK, Gitee's public profile email) we drop it — see the
//! README's table of deliberate differences. The protocol is `auth::oauth2`.

use super::oauth2::{
    EmailLookup, EmailProof, Expect, LookupUrl, ProviderSpec, Text, UserMapping, UserSource,
};

const NO_USER: UserMapping = UserMapping {
    id: Text::None,
    name: Text::None,
    username: Text::None,
    email: Text::None,
    avatar_url: Text::None,
    email_verified: EmailProof::Never,
    active: None,
};

const OIDC_USER: UserMapping = UserMapping {
    id: Text::At("/sub"),
    name: Text::At("/name"),
    username: Text::At("/preferred_username"),
    email: Text::At("/email"),
    avatar_url: Text::At("/picture"),
    email_verified: EmailProof::Flag("/email_verified"),
    active: None,
};

const GET: UserSource = UserSource::Get(&[]);

const BASE: ProviderSpec = ProviderSpec {
    name: "",
    display_name: "",
    order: 0,
    auth_url: "",
    token_url: "",
    user_info_url: "",
    scopes: &[],
    auth_params: &[],
    pkce: true,
    id_token_email: false,
    source: GET,
    user: NO_USER,
};

const fn oidc(name: &'static str) -> ProviderSpec {
    ProviderSpec {
        name,
        display_name: "OIDC",
        order: 99,
        scopes: &["openid", "email", "profile"],
        source: UserSource::UserInfoOrIdToken,
        user: OIDC_USER,
        ..BASE
    }
}

/// `[{email, primary, verified}]` (GitHub, Gitea): the primary verified one.
const PRIMARY_VERIFIED: EmailProof = EmailProof::Lookup(EmailLookup {
    url: LookupUrl::Append("/emails"),
    list: "",
    email: "email",
    require: &[("primary", Expect::True), ("verified", Expect::True)],
});

/// Every provider a collection may enable.
pub const CATALOG: &[ProviderSpec] = &[
    ProviderSpec {
        name: "apple",
        display_name: "Apple",
        order: 1,
        auth_url: "https://appleid.apple.com/auth/authorize",
        token_url: "https://appleid.apple.com/auth/token",
        scopes: &["name", "email"],
        auth_params: &[("response_mode", "form_post")],
        source: UserSource::IdToken {
            jwks: "https://appleid.apple.com/auth/keys",
            issuer: "https://appleid.apple.com",
        },
        user: UserMapping {
            username: Text::None,
            avatar_url: Text::None,
            ..OIDC_USER
        },
        ..BASE
    },
    ProviderSpec {
        name: "google",
        display_name: "Google",
        order: 2,
        auth_url: "https://accounts.google.com/o/oauth2/v2/auth",
        token_url: "https://oauth2.googleapis.com/token",
        user_info_url: "https://www.googleapis.com/oauth2/v3/userinfo",
        scopes: &[
            "https://www.googleapis.com/auth/userinfo.profile",
            "https://www.googleapis.com/auth/userinfo.email",
        ],
        user: UserMapping {
            username: Text::None,
            ..OIDC_USER
        },
        ..BASE
    },
    ProviderSpec {
        name: "microsoft",
        display_name: "Microsoft",
        order: 3,
        auth_url: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        token_url: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        user_info_url: "https://graph.microsoft.com/v1.0/me",
        scopes: &["User.Read"],
        id_token_email: true,
        user: UserMapping {
            id: Text::At("/id"),
            name: Text::At("/displayName"),
            // Graph's `mail` is not a verified address: a tenant admin can
            // set it to anyone's (nOAuth). PocketBase trusts it by default;
            // we never do, so it neither links nor verifies an account.
            email: Text::At("/mail"),
            ..NO_USER
        },
        ..BASE
    },
    ProviderSpec {
        name: "yandex",
        display_name: "Yandex",
        order: 4,
        auth_url: "https://oauth.yandex.com/authorize",
        token_url: "https://oauth.yandex.com/token",
        user_info_url: "https://login.yandex.ru/info",
        scopes: &["login:email", "login:avatar", "login:info"],
        user: UserMapping {
            id: Text::At("/id"),
            name: Text::At("/real_name"),
            username: Text::At("/login"),
            // `default_email` carries no verified flag: not trusted.
            email: Text::At("/default_email"),
            avatar_url: Text::When(
                "/is_avatar_empty",
                false,
                &Text::Template(
                    "https://avatars.yandex.net/get-yapic/{}/islands-200",
                    &["/default_avatar_id"],
                ),
            ),
            ..NO_USER
        },
        ..BASE
    },
    ProviderSpec {
        name: "facebook",
        display_name: "Facebook",
        order: 5,
        auth_url: "https://www.facebook.com/v3.2/dialog/oauth",
        token_url: "https://graph.facebook.com/v3.2/oauth/access_token",
        user_info_url: "https://graph.facebook.com/me?fields=name,email,picture.type(large)",
        scopes: &["email"],
        user: UserMapping {
            id: Text::At("/id"),
            name: Text::At("/name"),
            // Graph API documents no verified flag for `email`: not trusted.
            email: Text::At("/email"),
            avatar_url: Text::At("/picture/data/url"),
            ..NO_USER
        },
        ..BASE
    },
    ProviderSpec {
        name: "instagram2",
        display_name: "Instagram",
        order: 6,
        auth_url: "https://www.instagram.com/oauth/authorize",
        token_url: "https://api.instagram.com/oauth/access_token",
        user_info_url: "https://graph.instagram.com/me?fields=id,username,account_type,user_id,name,profile_picture_url,followers_count,follows_count,media_count",
        scopes: &["instagram_business_basic"],
        user: UserMapping {
            id: Text::At("/user_id"),
            name: Text::At("/name"),
            username: Text::At("/username"),
            avatar_url: Text::At("/profile_picture_url"),
            ..NO_USER
        },
        ..BASE
    },
    ProviderSpec {
        name: "github",
        display_name: "GitHub",
        order: 7,
        auth_url: "https://github.com/login/oauth/authorize",
        token_url: "https://github.com/login/oauth/access_token",
        user_info_url: "https://api.github.com/user",
        scopes: &["read:user", "user:email"],
        user: UserMapping {
            id: Text::At("/id"),
            name: Text::At("/name"),
            username: Text::At("/login"),
            // `/user`'s email is whatever the user made public, verified or
            // not; only the primary verified address of `/user/emails` counts.
            avatar_url: Text::At("/avatar_url"),
            email_verified: PRIMARY_VERIFIED,
            ..NO_USER
        },
        ..BASE
    },
    ProviderSpec {
        name: "gitlab",
        display_name: "GitLab",
        order: 8,
        auth_url: "https://gitlab.com/oauth/authorize",
        token_url: "https://gitlab.com/oauth/token",
        user_info_url: "https://gitlab.com/api/v4/user",
        scopes: &["read_user"],
        user: UserMapping {
            id: Text::At("/id"),
            name: Text::At("/name"),
            username: Text::At("/username"),
            email: Text::At("/email"),
            avatar_url: Text::At("/avatar_url"),
            email_verified: EmailProof::Timestamp("/confirmed_at"),
            active: None,
        },
        ..BASE
    },
    ProviderSpec {
        name: "bitbucket",
        display_name: "Bitbucket",
        order: 9,
        auth_url: "https://bitbucket.org/site/oauth2/authorize",
        token_url: "https://bitbucket.org/site/oauth2/access_token",
        user_info_url: "https://api.bitbucket.org/2.0/user",
        scopes: &["account"],
        pkce: false,
        user: UserMapping {
            id: Text::At("/uuid"),
            name: Text::At("/display_name"),
            username: Text::At("/username"),
            avatar_url: Text::At("/links/avatar/href"),
            email_verified: EmailProof::Lookup(EmailLookup {
                url: LookupUrl::Append("/emails"),
                list: "/values",
                email: "email",
                require: &[("is_primary", Expect::True), ("is_confirmed", Expect::True)],
            }),
            active: Some(("/account_status", Expect::Str("active"))),
            ..NO_USER
        },
        ..BASE
    },
    ProviderSpec {
        name: "gitee",
        display_name: "Gitee",
        order: 10,
        auth_url: "https://gitee.com/oauth/authorize",
        token_url: "https://gitee.com/oauth/token",
        user_info_url: "https://gitee.com/api/v5/user",
        scopes: &["user_info", "emails"],
        user: UserMapping {
            id: Text::At("/id"),
            name: Text::At("/name"),
            username: Text::At("/login"),
            avatar_url: Text::At("/avatar_url"),
            // The profile's public `email` is unverified (PocketBase takes
            // it when well-formed); only a confirmed primary address counts.
            email_verified: EmailProof::Lookup(EmailLookup {
                url: LookupUrl::Sibling("emails"),
                list: "",
                email: "email",
                require: &[
                    ("state", Expect::Str("confirmed")),
                    ("scope", Expect::Contains("primary")),
                ],
            }),
            ..NO_USER
        },
        ..BASE
    },
    ProviderSpec {
        name: "gitea",
        display_name: "Gitea/Forgejo",
        order: 11,
        auth_url: "https://gitea.com/login/oauth/authorize",
        token_url: "https://gitea.com/login/oauth/access_token",
        user_info_url: "https://gitea.com/api/v1/user",
        scopes: &["read:user", "user:email"],
        user: UserMapping {
            id: Text::At("/id"),
            name: Text::At("/full_name"),
            username: Text::At("/login"),
            avatar_url: Text::At("/avatar_url"),
            email_verified: PRIMARY_VERIFIED,
            active: Some(("/active", Expect::True)),
            ..NO_USER
        },
        ..BASE
    },
    ProviderSpec {
        name: "discord",
        display_name: "Discord",
        order: 12,
        auth_url: "https://discord.com/api/oauth2/authorize",
        token_url: "https://discord.com/api/oauth2/token",
        user_info_url: "https://discord.com/api/users/@me",
        scopes: &["identify", "email"],
        user: UserMapping {
            id: Text::At("/id"),
            name: Text::FirstOf(&["/global_name", "/username"]),
            username: Text::At("/username"),
            email: Text::At("/email"),
            avatar_url: Text::Template(
                "https://cdn.discordapp.com/avatars/{}/{}.png",
                &["/id", "/avatar"],
            ),
            email_verified: EmailProof::Flag("/verified"),
            active: None,
        },
        ..BASE
    },
    ProviderSpec {
        name: "twitter",
        display_name: "X/Twitter",
        order: 13,
        auth_url: "https://x.com/i/oauth2/authorize",
        token_url: "https://api.x.com/2/oauth2/token",
        user_info_url: "https://api.x.com/2/users/me?user.fields=id,name,username,profile_image_url,confirmed_email",
        scopes: &["users.read", "users.email", "tweet.read"],
        user: UserMapping {
            id: Text::At("/data/id"),
            name: Text::At("/data/name"),
            username: Text::At("/data/username"),
            // X documents `confirmed_email` as the confirmed address only.
            email: Text::At("/data/confirmed_email"),
            avatar_url: Text::At("/data/profile_image_url"),
            email_verified: EmailProof::Always,
            active: None,
        },
        ..BASE
    },
    ProviderSpec {
        name: "kakao",
        display_name: "Kakao",
        order: 14,
        auth_url: "https://kauth.kakao.com/oauth/authorize",
        token_url: "https://kauth.kakao.com/oauth/token",
        user_info_url: "https://kapi.kakao.com/v2/user/me",
        scopes: &["account_email", "profile_nickname", "profile_image"],
        user: UserMapping {
            id: Text::At("/id"),
            username: Text::At("/properties/nickname"),
            email: Text::At("/kakao_account/email"),
            avatar_url: Text::At("/properties/profile_image"),
            email_verified: EmailProof::Flags(&[
                "/kakao_account/is_email_valid",
                "/kakao_account/is_email_verified",
            ]),
            ..NO_USER
        },
        ..BASE
    },
    ProviderSpec {
        name: "vk",
        display_name: "ВКонтакте",
        order: 15,
        auth_url: "https://oauth.vk.com/authorize",
        token_url: "https://oauth.vk.com/access_token",
        user_info_url: "https://api.vk.com/method/users.get?fields=photo_max,screen_name&v=5.131",
        scopes: &["email"],
        pkce: false,
        user: UserMapping {
            id: Text::At("/response/0/id"),
            name: Text::Joined(&["/response/0/first_name", "/response/0/last_name"]),
            username: Text::At("/response/0/screen_name"),
            // VK hands an `email` beside the token with no verified flag:
            // not trusted (PocketBase trusts it).
            avatar_url: Text::At("/response/0/photo_max"),
            ..NO_USER
        },
        ..BASE
    },
    ProviderSpec {
        name: "linear",
        display_name: "Linear",
        order: 16,
        auth_url: "https://linear.app/oauth/authorize",
        token_url: "https://api.linear.app/oauth/token",
        user_info_url: "https://api.linear.app/graphql",
        scopes: &["read"],
        pkce: false,
        source: UserSource::GraphQl(
            r#"{"query": "query Me { viewer { id displayName name email avatarUrl active } }"}"#,
        ),
        user: UserMapping {
            id: Text::At("/data/viewer/id"),
            name: Text::At("/data/viewer/name"),
            username: Text::At("/data/viewer/displayName"),
            // No verified flag in Linear's API: not trusted.
            email: Text::At("/data/viewer/email"),
            avatar_url: Text::At("/data/viewer/avatarUrl"),
            email_verified: EmailProof::Never,
            active: Some(("/data/viewer/active", Expect::True)),
        },
        ..BASE
    },
    ProviderSpec {
        name: "notion",
        display_name: "Notion",
        order: 17,
        auth_url: "https://api.notion.com/v1/oauth/authorize",
        token_url: "https://api.notion.com/v1/oauth/token",
        user_info_url: "https://api.notion.com/v1/users/me",
        source: UserSource::Get(&[("Notion-Version", "2022-06-28")]),
        user: UserMapping {
            id: Text::At("/bot/owner/user/id"),
            name: Text::At("/bot/owner/user/name"),
            // No verified flag: not trusted.
            email: Text::At("/bot/owner/user/person/email"),
            avatar_url: Text::At("/bot/owner/user/avatar_url"),
            ..NO_USER
        },
        ..BASE
    },
    ProviderSpec {
        name: "monday",
        display_name: "monday.com",
        order: 18,
        auth_url: "https://auth.monday.com/oauth2/authorize",
        token_url: "https://auth.monday.com/oauth2/token",
        user_info_url: "https://api.monday.com/v2",
        scopes: &["me:read"],
        source: UserSource::GraphQl(
            r#"{"query": "query { me { id enabled name email is_verified photo_small }}"}"#,
        ),
        user: UserMapping {
            id: Text::At("/data/me/id"),
            name: Text::At("/data/me/name"),
            username: Text::None,
            email: Text::At("/data/me/email"),
            avatar_url: Text::At("/data/me/photo_small"),
            email_verified: EmailProof::Flag("/data/me/is_verified"),
            active: Some(("/data/me/enabled", Expect::True)),
        },
        ..BASE
    },
    ProviderSpec {
        name: "lark",
        display_name: "Lark",
        order: 19,
        auth_url: "https://accounts.feishu.cn/open-apis/authen/v1/authorize",
        token_url: "https://open.feishu.cn/open-apis/authen/v2/oauth/token",
        user_info_url: "https://open.feishu.cn/open-apis/authen/v1/user_info",
        user: UserMapping {
            id: Text::At("/data/union_id"),
            name: Text::At("/data/name"),
            avatar_url: Text::At("/data/avatar_url"),
            ..NO_USER
        },
        ..BASE
    },
    ProviderSpec {
        name: "box",
        display_name: "Box",
        order: 20,
        auth_url: "https://account.box.com/api/oauth2/authorize",
        token_url: "https://api.box.com/oauth2/token",
        user_info_url: "https://api.box.com/2.0/users/me",
        scopes: &["root_readonly"],
        user: UserMapping {
            id: Text::At("/id"),
            name: Text::At("/name"),
            // `login` has no verified flag in Box's API: not trusted.
            email: Text::At("/login"),
            avatar_url: Text::At("/avatar_url"),
            active: Some(("/status", Expect::Str("active"))),
            ..NO_USER
        },
        ..BASE
    },
    ProviderSpec {
        name: "spotify",
        display_name: "Spotify",
        order: 21,
        auth_url: "https://accounts.spotify.com/authorize",
        token_url: "https://accounts.spotify.com/api/token",
        user_info_url: "https://api.spotify.com/v1/me",
        scopes: &["user-read-private"],
        user: UserMapping {
            id: Text::At("/id"),
            name: Text::At("/display_name"),
            avatar_url: Text::At("/images/0/url"),
            ..NO_USER
        },
        ..BASE
    },
    ProviderSpec {
        name: "trakt",
        display_name: "Trakt",
        order: 22,
        auth_url: "https://trakt.tv/oauth/authorize",
        token_url: "https://api.trakt.tv/oauth/token",
        user_info_url: "https://api.trakt.tv/users/settings",
        source: UserSource::Get(&[("trakt-api-key", "{client_id}"), ("trakt-api-version", "2")]),
        user: UserMapping {
            id: Text::At("/user/ids/uuid"),
            name: Text::At("/user/name"),
            username: Text::At("/user/username"),
            avatar_url: Text::At("/user/images/avatar/full"),
            ..NO_USER
        },
        ..BASE
    },
    ProviderSpec {
        name: "twitch",
        display_name: "Twitch",
        order: 23,
        auth_url: "https://id.twitch.tv/oauth2/authorize",
        token_url: "https://id.twitch.tv/oauth2/token",
        user_info_url: "https://api.twitch.tv/helix/users",
        scopes: &["user:read:email"],
        source: UserSource::Get(&[("Client-Id", "{client_id}")]),
        user: UserMapping {
            id: Text::At("/data/0/id"),
            name: Text::At("/data/0/display_name"),
            username: Text::At("/data/0/login"),
            // Helix documents `email` as the user's verified address.
            email: Text::At("/data/0/email"),
            avatar_url: Text::At("/data/0/profile_image_url"),
            email_verified: EmailProof::Always,
            active: None,
        },
        ..BASE
    },
    ProviderSpec {
        name: "patreon",
        display_name: "Patreon",
        order: 24,
        auth_url: "https://www.patreon.com/oauth2/authorize",
        token_url: "https://www.patreon.com/api/oauth2/token",
        user_info_url: "https://www.patreon.com/api/oauth2/v2/identity?fields%5Buser%5D=full_name,email,vanity,image_url,is_email_verified",
        scopes: &["identity", "identity[email]"],
        user: UserMapping {
            id: Text::At("/data/id"),
            name: Text::At("/data/attributes/full_name"),
            username: Text::At("/data/attributes/vanity"),
            email: Text::At("/data/attributes/email"),
            avatar_url: Text::At("/data/attributes/image_url"),
            email_verified: EmailProof::Flag("/data/attributes/is_email_verified"),
            active: None,
        },
        ..BASE
    },
    ProviderSpec {
        name: "strava",
        display_name: "Strava",
        order: 25,
        auth_url: "https://www.strava.com/oauth/authorize",
        token_url: "https://www.strava.com/api/v3/oauth/token",
        user_info_url: "https://www.strava.com/api/v3/athlete",
        scopes: &["profile:read_all"],
        user: UserMapping {
            id: Text::At("/id"),
            name: Text::Joined(&["/firstname", "/lastname"]),
            username: Text::At("/username"),
            avatar_url: Text::At("/profile"),
            ..NO_USER
        },
        ..BASE
    },
    ProviderSpec {
        name: "wakatime",
        display_name: "WakaTime",
        order: 26,
        auth_url: "https://wakatime.com/oauth/authorize",
        token_url: "https://wakatime.com/oauth/token",
        user_info_url: "https://wakatime.com/api/v1/users/current",
        scopes: &["email"],
        user: UserMapping {
            id: Text::At("/data/id"),
            name: Text::At("/data/display_name"),
            username: Text::At("/data/username"),
            email: Text::At("/data/email"),
            avatar_url: Text::When("/data/photo_public", true, &Text::At("/data/photo")),
            email_verified: EmailProof::Flag("/data/is_email_confirmed"),
            active: None,
        },
        ..BASE
    },
    ProviderSpec {
        name: "livechat",
        display_name: "LiveChat",
        order: 27,
        auth_url: "https://accounts.livechat.com/",
        token_url: "https://accounts.livechat.com/token",
        user_info_url: "https://accounts.livechat.com/v2/accounts/me",
        user: UserMapping {
            id: Text::At("/account_id"),
            name: Text::At("/name"),
            email: Text::At("/email"),
            avatar_url: Text::At("/avatar_url"),
            email_verified: EmailProof::Flag("/email_verified"),
            ..NO_USER
        },
        ..BASE
    },
    ProviderSpec {
        name: "mailcow",
        display_name: "mailcow",
        order: 28,
        scopes: &["profile"],
        user: UserMapping {
            id: Text::At("/id"),
            name: Text::At("/full_name"),
            username: Text::BeforeAt("/username"),
            // The address is a mailbox on the mail server that signs the
            // user in (its URLs are the collection admin's choice).
            email: Text::At("/email"),
            email_verified: EmailProof::Always,
            active: Some(("/active", Expect::Num(1))),
            ..NO_USER
        },
        ..BASE
    },
    ProviderSpec {
        name: "planningcenter",
        display_name: "Planning Center",
        order: 29,
        auth_url: "https://api.planningcenteronline.com/oauth/authorize",
        token_url: "https://api.planningcenteronline.com/oauth/token",
        user_info_url: "https://api.planningcenteronline.com/people/v2/me",
        scopes: &["people"],
        user: UserMapping {
            id: Text::At("/data/id"),
            name: Text::At("/data/attributes/name"),
            avatar_url: Text::At("/data/attributes/avatar"),
            active: Some(("/data/attributes/status", Expect::Str("active"))),
            ..NO_USER
        },
        ..BASE
    },
    oidc("oidc"),
    oidc("oidc2"),
    oidc("oidc3"),
];
