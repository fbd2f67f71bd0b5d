// French is the default language. Keys are the source of truth: en.ts must have them all.
export const fr = {
  app: {
    name: "Estrade",
    tagline: "Vos formations en direct",
    language: "Langue",
  },
  signIn: {
    title: "Connexion",
    intro: "Connectez-vous avec le compte de votre organisme de formation.",
    backendUrl: "Adresse du serveur",
    email: "Adresse e-mail",
    password: "Mot de passe",
    remember: "Rester connecté sur cet ordinateur",
    submit: "Se connecter",
    submitting: "Connexion…",
    restoring: "Reconnexion en cours…",
    rememberFailed:
      "Vous êtes connecté, mais le trousseau du système a refusé de mémoriser la connexion : il faudra vous reconnecter au prochain lancement.",
  },
  header: {
    signOut: "Se déconnecter",
    signedInAs: "Connecté en tant que {name}",
  },
  sessions: {
    title: "Mes sessions",
    refresh: "Actualiser",
    loading: "Chargement des sessions…",
    empty: "Aucune session pour le moment.",
    live: "En direct",
    upcoming: "À venir",
    past: "Passées",
    participants: "{count} / {max} participants",
    ledBy: "Animée par {name}",
    cancelledBecause: "Annulée : {reason}",
    status: {
      scheduled: "Programmée",
      live: "En direct",
      ended: "Terminée",
      cancelled: "Annulée",
    },
    role: {
      trainer: "Formateur principal",
      co_trainer: "Co-formateur",
      student: "Participant",
    },
  },
  errors: {
    generic: "Une erreur est survenue : {message}",
    invalid_credentials: "Adresse e-mail ou mot de passe incorrect.",
    invalid_request: "La demande est incomplète ou invalide.",
    unreachable: "Le serveur est injoignable. Vérifiez l'adresse et votre connexion.",
    timeout: "Le serveur ne répond pas. Réessayez dans un instant.",
    server_error: "Le serveur a rencontré un problème. Réessayez plus tard.",
    malformed_response: "Le serveur a envoyé une réponse inattendue.",
    invalid_backend_url: "L'adresse du serveur n'est pas valide.",
    insecure_backend_url: "L'adresse du serveur doit commencer par https://.",
    invalid_refresh_token: "Votre session a expiré. Veuillez vous reconnecter.",
    invalid_token: "Votre session a expiré. Veuillez vous reconnecter.",
    token_expired: "Votre session a expiré. Veuillez vous reconnecter.",
    unauthenticated: "Veuillez vous connecter.",
    not_signed_in: "Veuillez vous connecter.",
    keychain_unavailable: "Le trousseau du système n'est pas disponible.",
    keychain_error: "Le trousseau du système a refusé l'opération.",
  },
};

/** The shape every locale must have: the same keys, any strings. */
type Widen<T> = { [K in keyof T]: T[K] extends string ? string : Widen<T[K]> };
export type Messages = Widen<typeof fr>;
